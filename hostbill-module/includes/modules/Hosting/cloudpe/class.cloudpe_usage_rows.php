<?php

require_once __DIR__ . '/class.cloudpe_decimal.php';
require_once __DIR__ . '/class.cloudpe_report.php';

/**
 * The reader of the host's streamed `usage` report, one row at a time, and its validator. What
 * the host sends is hostile: a row counts only for an account this run sent, once, with the
 * window it was sent, hours inside it, ascending, whole UTC hours, amounts in the strict decimal
 * form, a bonus not above the cost and at most 20 scalar facts; anything else is an error for
 * that account (nothing billed), and a row for an account not sent, or a second one, is a
 * contract violation. Checked rows are kept, one JSON line each, in a php://temp spool (memory,
 * then a temporary file) until the report has ended; nothing is billed here.
 */
class cloudpe_usage_rows
{
    /** @var cloudpe connected to one App */
    private $module;
    /** @var array<string, array> account id => [from, product id, client id], as sent */
    private $sent;
    /** @var int the end of the window sent */
    private $until;
    /** @var resource php://temp */
    private $spool;
    /** @var array<string, bool> accounts already answered */
    private $seen = array();
    /** @var array the run's counts (violations are counted here) */
    private $result;

    /**
     * @param array $sent account id => [from, product id, client id]
     * @param resource $spool php://temp, open for writing and reading
     * @param array $result the run's counts, updated in place
     */
    public function __construct(cloudpe $module, array $sent, $until, $spool, array &$result)
    {
        $this->module = $module;
        $this->sent = $sent;
        $this->until = $until;
        $this->spool = $spool;
        $this->result = &$result;
    }

    /**
     * Takes one row of the report's `usage` as it arrives: checks it against what this run sent
     * and keeps it (as [id, kind, data]); a row that is not usable becomes an error for its
     * account, and one for an account not sent (or sent once and answered twice) is counted and
     * logged as a contract violation.
     */
    public function take(array $row)
    {
        $raw = isset($row['account_id']) ? $row['account_id'] : null;
        $id = (is_int($raw) && $raw > 0) || (is_string($raw) && preg_match('/^[1-9][0-9]{0,9}$/', $raw)) ? (string) $raw : null;
        if ($id === null || !isset($this->sent[$id])) {
            $shown = is_scalar($raw) ? cloudpe_usage::clip((string) $raw) : gettype($raw);
            $this->violation("a usage row for account #{$shown}, which this import did not send");
            return;
        }
        if (isset($this->seen[$id])) {
            $this->violation("a second usage row for account #{$id}");
            $this->keep(array($id, 'void', 'the host answered twice for it (module contract violation); nothing billed'));
            return;
        }
        $this->seen[$id] = true;
        if (isset($row['error'])) {
            $kind = isset($row['error']['kind']) && is_string($row['error']['kind']) ? cloudpe_usage::clip($row['error']['kind']) : 'error';
            $message = isset($row['error']['message']) && is_scalar($row['error']['message']) ? (string) $row['error']['message'] : 'no message';
            $this->keep(array($id, 'error', "{$kind}: " . $this->module->reportText(cloudpe_usage::clip($message, 500))));
            return;
        }
        if (isset($row['skipped'])) {
            $this->keep(array($id, 'skipped', is_scalar($row['skipped']) ? $this->module->reportText(cloudpe_usage::clip((string) $row['skipped'], 200)) : 'skipped'));
            return;
        }
        list($from) = $this->sent[$id];
        $until = $this->until;
        $problem = null;
        $hours = array();
        if (!isset($row['hours']) || !is_array($row['hours'])) {
            $problem = 'it has neither hours, skipped nor error';
        } elseif (!isset($row['from']) || $row['from'] !== cloudpe_usage::iso($from) || !isset($row['until']) || $row['until'] !== cloudpe_usage::iso($until)) {
            $problem = 'its window is not the one asked (' . cloudpe_usage::iso($from) . ' to ' . cloudpe_usage::iso($until) . ')';
        } else {
            $previous = null;
            foreach (array_values($row['hours']) as $i => $hour) {
                $problem = self::hourProblem($hour, $from, $until, $previous);
                if ($problem !== null) {
                    $problem = 'hour #' . ($i + 1) . ': ' . $problem;
                    break;
                }
                $previous = cloudpe_usage::fromIso($hour['start']);
                $facts = array();
                foreach (isset($hour['facts']) ? $hour['facts'] : array() as $name => $value) {
                    // Kept for the log and the CSV: plain, without the App's secrets, bounded.
                    $facts[cloudpe_usage::clip($this->module->scrub((string) $name), 64)] = cloudpe_usage::clip($this->module->scrub((string) $value), 200);
                }
                $hours[] = array($previous, cloudpe_decimal::normal($hour['cost']), cloudpe_decimal::normal($hour['bonus']), cloudpe_decimal::sub($hour['cost'], $hour['bonus']), $facts);
            }
        }
        if ($problem !== null) {
            $this->keep(array($id, 'void', 'the host\'s usage row is not usable (' . $this->module->reportText($problem) . '); nothing billed'));
            return;
        }
        $this->keep(array($id, 'read', $hours));
    }

    /**
     * The kept rows, in the order they arrived, each [id, kind, data]: kind `read` (data: the
     * hours, each [start, cost, bonus, billable, facts]), `skipped` or `error`/`void` (data: why).
     *
     * @return \Generator
     */
    public function kept()
    {
        rewind($this->spool);
        while (($line = fgets($this->spool)) !== false) {
            yield json_decode($line, true);
        }
    }

    /** Why `$hour` is not a usable hour of [`$from`, `$until`) after `$previous`, or null. */
    private static function hourProblem($hour, $from, $until, $previous)
    {
        if (!is_array($hour) || !isset($hour['start']) || !is_string($hour['start'])) {
            return 'no start';
        }
        $start = cloudpe_usage::fromIso($hour['start']);
        if ($start === null) {
            return 'its start "' . cloudpe_usage::clip($hour['start']) . '" is not a whole UTC hour (2026-12-06T10:00:00Z)';
        }
        if ($start < $from || $start >= $until) {
            return "its start {$hour['start']} is outside the window";
        }
        if ($previous !== null && $start <= $previous) {
            return "its start {$hour['start']} does not follow the hour before it";
        }
        foreach (array('cost', 'bonus') as $amount) {
            if (isset($hour[$amount]) && is_string($hour[$amount]) && preg_match('/^(0|[1-9][0-9]{0,17})\.[0-9]{11,}$/', $hour[$amount]) === 1) {
                // Exact, but finer than the ledger's DECIMAL(28,10): never rounded, so refused by name.
                return "its {$amount} \"" . cloudpe_usage::clip($hour[$amount]) . "\" has more than 10 digits after the point, more than HostBill's usage ledger keeps; it is not rounded, so this account is not billed until it is settled (docs/usage.md)";
            }
            if (!isset($hour[$amount]) || !cloudpe_decimal::isAmount($hour[$amount])) {
                $shown = isset($hour[$amount]) && is_scalar($hour[$amount]) ? '"' . cloudpe_usage::clip((string) $hour[$amount]) . '"' : 'missing';
                return "its {$amount} {$shown} is not an exact decimal string such as \"0.1234\"";
            }
        }
        if (cloudpe_decimal::compare($hour['bonus'], $hour['cost']) > 0) {
            return "its bonus {$hour['bonus']} is more than its cost {$hour['cost']}";
        }
        if (isset($hour['facts']) && (!is_array($hour['facts']) || count($hour['facts']) > 20)) {
            return 'its facts are not an object of at most 20 values';
        }
        foreach (isset($hour['facts']) ? $hour['facts'] : array() as $value) {
            if (!is_scalar($value)) {
                return 'a fact is not a string';
            }
        }
        return null;
    }

    private function violation($what)
    {
        $this->result['violations']++;
        if ($this->result['violations'] <= cloudpe_usage::ERRORS_LOGGED) {
            hbm_log_error($this->module->scrub('usage import App #' . $this->module->serverId() . ": refused {$what} (module contract violation); nothing billed"), cloudpe::LOG_TAG);
        }
    }

    private function keep(array $entry)
    {
        $line = json_encode($entry, JSON_PARTIAL_OUTPUT_ON_ERROR | JSON_INVALID_UTF8_SUBSTITUTE);
        if ($line === false || fwrite($this->spool, $line . "\n") !== strlen($line) + 1) {
            throw new cloudpe_report_error('a usage row could not be kept in PHP\'s temporary stream (php://temp): is the temporary folder full?', false);
        }
    }
}
