<?php

require_once __DIR__ . '/class.cloudpe_db.php';
require_once __DIR__ . '/class.cloudpe_decimal.php';

/**
 * The usage import's store and its exactly-once write path (docs/usage.md "How exactly-once
 * works"): the ledger (`cloudpe_usage::LEDGER`, one row per account and billable hour) and the
 * cursors (`cloudpe_usage::CURSORS`, per account the hour every earlier one is settled before).
 * Ledger rows are written first, each is marked `attempted_at` before its meteredAddUsage and
 * `pushed` with HostBill's usage id; rows an earlier run left attempted are reconciled against
 * meteredGetUsage before anything is pushed again; a cursor moves, in one transaction, only once
 * every row before it is pushed. The failpoints of the kill tests are here.
 */
class cloudpe_usage_ledger
{
    /** @var object ApiWrapper */
    private $api;
    /** @var cloudpe_db */
    private $db;
    /** @var callable fn(): int */
    private $clock;
    /** @var array the run's counts (pushed, billed, reconciled are counted here) */
    private $result;

    /**
     * @param object $api ApiWrapper
     * @param array $result the run's counts, updated in place
     */
    public function __construct($api, cloudpe_db $db, callable $clock, array &$result)
    {
        $this->api = $api;
        $this->db = $db;
        $this->clock = $clock;
        $this->result = &$result;
    }

    /**
     * Creates the ledger and the cursors (install() and upgrade() only: a CREATE TABLE commits any
     * open transaction, see cloudpe_retries::createTables). Idempotent.
     */
    public static function createTables($db = null)
    {
        $db = cloudpe_db::of($db);
        $db->execute('CREATE TABLE IF NOT EXISTS `' . cloudpe_usage::LEDGER . '` ('
            . '`id` int(11) NOT NULL AUTO_INCREMENT, '
            . '`server_id` int(11) NOT NULL, '
            . '`account_id` int(11) NOT NULL, '
            . '`hour` datetime NOT NULL, '
            . '`cost` decimal(28,10) NOT NULL, '
            . '`bonus` decimal(28,10) NOT NULL, '
            . '`billable` decimal(28,10) NOT NULL, '
            . '`state` varchar(16) NOT NULL, '
            . '`attempted_at` datetime NULL DEFAULT NULL, '
            . '`usage_id` varchar(32) NULL DEFAULT NULL, '
            . '`pushed_at` datetime NULL DEFAULT NULL, '
            . '`created_at` datetime NOT NULL, '
            . 'PRIMARY KEY (`id`), '
            . 'UNIQUE KEY `account_hour` (`account_id`, `hour`), '
            . 'KEY `server_state` (`server_id`, `state`)'
            . ') ENGINE=InnoDB DEFAULT CHARSET=utf8', array());
        $db->execute('CREATE TABLE IF NOT EXISTS `' . cloudpe_usage::CURSORS . '` ('
            . '`account_id` int(11) NOT NULL, '
            . '`server_id` int(11) NOT NULL, '
            . '`last_hour` datetime NULL DEFAULT NULL, '
            . '`test_hour` datetime NULL DEFAULT NULL, '
            . '`updated_at` datetime NOT NULL, '
            . 'PRIMARY KEY (`account_id`), '
            . 'KEY `server` (`server_id`)'
            . ') ENGINE=InnoDB DEFAULT CHARSET=utf8', array());
    }

    /**
     * Kills this process (SIGKILL) when CLOUDPE_USAGE_FAILPOINT names `$point` (optionally
     * `<point>:<n>`, the n-th time): the tests' way to stop the import at each step. Unset (as in
     * production), it does nothing.
     */
    public static function failpoint($point)
    {
        static $hits = array();
        $spec = getenv(cloudpe_usage::FAILPOINT_VARIABLE);
        if (!is_string($spec) || $spec === '') {
            return;
        }
        $parts = explode(':', $spec, 2);
        if ($parts[0] !== $point) {
            return;
        }
        $hits[$point] = (isset($hits[$point]) ? $hits[$point] : 0) + 1;
        if ($hits[$point] >= (isset($parts[1]) ? max(1, (int) $parts[1]) : 1) && function_exists('posix_kill')) {
            posix_kill(getmypid(), 9);
        }
    }

    /** The App's accounts with a ledger row not pushed yet, in id order. */
    public function unsettledAccounts($serverId)
    {
        $ids = array();
        foreach ($this->db->select('SELECT DISTINCT account_id FROM `' . cloudpe_usage::LEDGER . '` WHERE server_id = :server AND state <> :pushed ORDER BY account_id', array(':server' => $serverId, ':pushed' => 'pushed')) as $row) {
            $ids[] = $row['account_id'];
        }
        return $ids;
    }

    /** The App's cursors: account id => Unix time of `last_hour` (or `test_hour` in test mode), or null. */
    public function cursors($serverId, $test)
    {
        $cursors = array();
        foreach ($this->db->select('SELECT account_id, last_hour, test_hour FROM `' . cloudpe_usage::CURSORS . '` WHERE server_id = :server', array(':server' => $serverId)) as $row) {
            $cursors[$row['account_id']] = cloudpe_usage::fromSql($test ? $row['test_hour'] : $row['last_hour']);
        }
        return $cursors;
    }

    /**
     * Records one billable hour as a `pending` ledger row. A second read of an hour (a run stopped
     * before its cursor moved) adds nothing: the first amounts recorded are the ones billed.
     */
    public function record($serverId, $id, $start, $cost, $bonus, $billable, $now)
    {
        $this->db->execute('INSERT IGNORE INTO `' . cloudpe_usage::LEDGER . '` (server_id, account_id, hour, cost, bonus, billable, state, created_at) VALUES (:server, :account, :hour, :cost, :bonus, :billable, :state, :now)', array(
            ':server' => $serverId, ':account' => $id, ':hour' => cloudpe_usage::sqlTime($start), ':cost' => $cost,
            ':bonus' => $bonus, ':billable' => $billable, ':state' => 'pending', ':now' => $now,
        ));
    }

    /**
     * Settles the account's ledger rows not pushed yet (those of hours before `$until`, or all
     * when null): reconciles the attempted ones with meteredGetUsage, pushes the others.
     *
     * @return string|null null when every such row is pushed, otherwise why not
     */
    public function settle($id, $until)
    {
        $rows = $this->db->select('SELECT id, hour, billable, state, attempted_at FROM `' . cloudpe_usage::LEDGER . '` WHERE account_id = :account AND state <> :pushed' . ($until !== null ? ' AND hour < :until' : '') . ' ORDER BY hour', array(':account' => $id, ':pushed' => 'pushed') + ($until !== null ? array(':until' => cloudpe_usage::sqlTime($until)) : array()));
        $listing = null;
        foreach ($rows as $row) {
            $hour = cloudpe_usage::fromSql($row['hour']);
            if ($row['state'] === 'unconfirmed') {
                return self::unconfirmedText($id, $hour);
            }
            if ($row['attempted_at'] !== null) {
                if ($listing === null) {
                    $listing = $this->usageListing($id);
                    if (is_string($listing)) {
                        return $listing;
                    }
                }
                $found = self::find($listing, $hour);
                if ($found !== null) {
                    $this->mark($row['id'], $found);
                    $this->result['reconciled']++;
                    continue;
                }
                if (!self::covers($listing, $hour)) {
                    $this->db->execute('UPDATE `' . cloudpe_usage::LEDGER . '` SET state = :state WHERE id = :id', array(':state' => 'unconfirmed', ':id' => $row['id']));
                    return self::unconfirmedText($id, $hour);
                }
            }
            $problem = $this->push($id, $row, $hour);
            if ($problem !== null) {
                return $problem;
            }
        }
        return null;
    }

    /**
     * Moves the account's cursor (`last_hour` or `test_hour`) forward to `$until`, in one
     * transaction: a stop before the commit leaves the old cursor.
     */
    public function moveCursor($id, $serverId, $column, $until)
    {
        $this->db->transaction(function (cloudpe_db $db) use ($id, $serverId, $column, $until) {
            $db->execute('INSERT INTO `' . cloudpe_usage::CURSORS . "` (account_id, server_id, {$column}, updated_at) VALUES (:account, :server, :hour, :now) "
                . "ON DUPLICATE KEY UPDATE server_id = VALUES(server_id), {$column} = GREATEST(COALESCE({$column}, VALUES({$column})), VALUES({$column})), updated_at = VALUES(updated_at)", array(
                ':account' => $id, ':server' => $serverId, ':hour' => cloudpe_usage::sqlTime($until), ':now' => cloudpe_usage::sqlTime(call_user_func($this->clock)),
            ));
            self::failpoint('in-cursor');
        });
    }

    /** Pushes one ledger row with meteredAddUsage; null when HostBill took it, otherwise why not. */
    private function push($id, array $row, $hour)
    {
        $this->db->execute('UPDATE `' . cloudpe_usage::LEDGER . '` SET attempted_at = :now WHERE id = :id', array(':now' => cloudpe_usage::sqlTime(call_user_func($this->clock)), ':id' => $row['id']));
        self::failpoint('before-push');
        $amount = cloudpe_decimal::normal($row['billable']);
        $local = cloudpe_usage::hostbillTime($hour);
        $reply = $this->api->meteredAddUsage(array(
            'account_id' => (string) $id,
            'variable' => cloudpe_usage::VARIABLE,
            'qty' => $amount,
            'charge' => $amount,
            'date_created' => $local,
            'date_updated' => $local,
            'output' => cloudpe_usage::marker($hour),
        ));
        if (is_array($reply) && !empty($reply['success']) && isset($reply['usage_id']) && is_scalar($reply['usage_id']) && (string) $reply['usage_id'] !== '') {
            self::failpoint('after-push');
            $this->mark($row['id'], (string) $reply['usage_id']);
            $this->result['pushed']++;
            $this->result['billed'] = cloudpe_decimal::add($this->result['billed'], $amount);
            self::failpoint('after-mark');
            return null;
        }
        if (is_array($reply) && array_key_exists('success', $reply) && !$reply['success']) {
            // HostBill said no: nothing was added, so the row may be pushed again as it is.
            $this->db->execute('UPDATE `' . cloudpe_usage::LEDGER . '` SET attempted_at = NULL WHERE id = :id', array(':id' => $row['id']));
            return 'HostBill did not take the usage of ' . cloudpe_usage::iso($hour) . ' (meteredAddUsage: ' . cloudpe_usage::apiError($reply) . ')';
        }
        // No usable answer: the next run looks for the row before pushing it again.
        return 'HostBill gave no usable answer to meteredAddUsage for ' . cloudpe_usage::iso($hour) . ': the next run checks meteredGetUsage before pushing it again';
    }

    private function mark($ledgerId, $usageId)
    {
        $this->db->execute('UPDATE `' . cloudpe_usage::LEDGER . '` SET state = :state, usage_id = :usage, pushed_at = :now WHERE id = :id', array(
            ':state' => 'pushed', ':usage' => cloudpe_usage::clip((string) $usageId, 32), ':now' => cloudpe_usage::sqlTime(call_user_func($this->clock)), ':id' => $ledgerId,
        ));
    }

    /**
     * The account's metered usage values as meteredGetUsage lists them (every variable's), each
     * [variable_name, date_created, output, id]; a string when HostBill did not list them.
     */
    private function usageListing($id)
    {
        $reply = $this->api->meteredGetUsage(array('account_id' => (string) $id));
        if (!is_array($reply) || empty($reply['success'])) {
            return 'HostBill did not list the account\'s metered usage (meteredGetUsage: ' . cloudpe_usage::apiError($reply) . '), needed to check what an earlier, interrupted import pushed';
        }
        $values = array();
        foreach (isset($reply['variables']) && is_array($reply['variables']) ? $reply['variables'] : array() as $variable) {
            foreach (is_array($variable) && isset($variable['values']) && is_array($variable['values']) ? $variable['values'] : array() as $value) {
                if (!is_array($value)) {
                    continue;
                }
                $values[] = array(
                    isset($value['variable_name']) ? (string) $value['variable_name'] : (isset($variable['variable_name']) ? (string) $variable['variable_name'] : ''),
                    isset($value['date_created']) ? (string) $value['date_created'] : '',
                    isset($value['output']) ? (string) $value['output'] : '',
                    isset($value['id']) ? (string) $value['id'] : '',
                );
            }
        }
        return $values;
    }

    /** The usage id of the listed value for `$hour` (by `output`, else `date_created`), or null. */
    private static function find(array $listing, $hour)
    {
        $marker = cloudpe_usage::marker($hour);
        $local = cloudpe_usage::hostbillTime($hour);
        foreach ($listing as $value) {
            if ($value[0] === cloudpe_usage::VARIABLE && ($value[2] === $marker || ($value[2] === '' && $value[1] === $local))) {
                return $value[3] !== '' ? $value[3] : 'listed';
            }
        }
        return null;
    }

    /**
     * Whether the listing reaches back to `$hour`: it holds a value (of any variable) dated at
     * or before it. Only then does a missing row mean HostBill does not have it.
     */
    private static function covers(array $listing, $hour)
    {
        $local = cloudpe_usage::hostbillTime($hour);
        foreach ($listing as $value) {
            if ($value[1] !== '' && strcmp($value[1], $local) <= 0) {
                return true;
            }
        }
        return false;
    }

    private static function unconfirmedText($id, $hour)
    {
        return 'the usage of ' . cloudpe_usage::iso($hour) . ' was being pushed when an earlier import stopped, and HostBill\'s metered usage (meteredGetUsage) does not reach back to that hour to tell whether it was recorded: it is held, not billed again; check the account\'s metered usage and settle it (docs/usage.md "An unconfirmed hour")';
    }
}
