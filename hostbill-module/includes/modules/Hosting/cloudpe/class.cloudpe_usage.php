<?php

require_once __DIR__ . '/class.cloudpe.php';
require_once __DIR__ . '/class.cloudpe_decimal.php';
require_once __DIR__ . '/class.cloudpe_usage_csv.php';

/**
 * The hourly usage import (issue 22): CloudPe's cost per account and closed hour, read through
 * the host's `usage` command, pushed to HostBill's metered billing (Admin API `meteredAddUsage`,
 * variable `cloudpeCost`, billing/metered.yml) EXACTLY ONCE per account and hour.
 *
 * Exactly once (docs/usage.md "How exactly-once works"):
 *
 *  1. per account a cursor (`hb_cloudpe_usage_cursors.last_hour`): every hour before it is settled;
 *     the next window starts there (first run: "Usage backfill hours" before the end);
 *  2. an hour with something to bill becomes a ledger row first (`hb_cloudpe_usage_ledger`, state
 *     `pending`, UNIQUE(account_id, hour): a second read of the same hour adds nothing);
 *  3. a row is marked `attempted_at` just before its meteredAddUsage, whose `date_created` is the
 *     hour's start and whose `output` names the hour ("CloudPe usage 2026-12-06T10:00Z"); HostBill's
 *     usage id marks it `pushed`;
 *  4. the cursor moves (in one transaction) only when every ledger row of the window is `pushed`.
 *
 * One run per App at a time (MySQL's GET_LOCK, released with the connection of a killed run).
 * A run first settles every row left unpushed by an earlier one: a row never attempted is pushed;
 * an attempted one is looked for in meteredGetUsage (by its `output`, or its `date_created`) and
 * marked `pushed` when found. Not found, it is pushed again only if that listing reaches back to
 * its hour (meteredGetUsage lists the current billing period only); otherwise it is held as
 * `unconfirmed` for the admin, never guessed. So a stop at any point neither loses an hour (its
 * row, or the cursor, is still behind it) nor bills it twice (a row is pushed again only when
 * HostBill's own listing shows it is absent).
 *
 * The host's report is hostile: a row counts only for an account this run sent, once, with the
 * window it was sent, hours inside it, ascending, amounts in the strict decimal form and a bonus
 * not above the cost; anything else is an error for that account and bills nothing.
 *
 * Failpoints (tests only): CLOUDPE_USAGE_FAILPOINT=<point>[:<n>] kills this PHP process with
 * SIGKILL the n-th time it reaches <point> (see FAILPOINTS); unset, they do nothing.
 */
class cloudpe_usage
{
    const LEDGER = 'hb_cloudpe_usage_ledger';
    const CURSORS = 'hb_cloudpe_usage_cursors';
    /** The metered variable (billing/metered.yml). */
    const VARIABLE = 'cloudpeCost';
    /** How the import names itself in the account's log and in `output`. */
    const SOURCE = 'CloudPe usage import';
    /** The App settings (custom, see cloudpe::$serverFields). */
    const SETTING_MODE = 'Usage import';
    const SETTING_BACKFILL = 'Usage backfill hours';
    const SETTING_ZONE = 'Usage time zone';
    const SETTING_CSV = 'Usage test CSV folder';
    const MODES = array('off', 'test', 'on');
    const DEFAULT_BACKFILL = 24;
    /** The host's longest window, in hours. */
    const MAX_WINDOW_HOURS = 744;
    /** An hour is imported once it ended at least this long ago: CloudPe books an hour's cost late. */
    const LAG_SECONDS = 600;
    /** Seconds one App's usage read may take before PHP stops the host (it stops itself earlier). */
    const TIMEOUT = 1800;
    /** Bytes of rows kept in memory; past that php://temp keeps them in a temporary file. */
    const SPOOL_MEMORY = 1048576;
    /** Per-account problems logged one by one per App; past that only their count. */
    const ERRORS_LOGGED = 50;
    /** Per-hour test-mode lines in the system log per App and run; the CSV has every one. */
    const TEST_LINES_LOGGED = 200;
    /** CloudPe's result code for a method the session may not call. */
    const PERMISSION_DENIED = 8202;
    /**
     * The CloudPe method the component's usage read calls (docs/cloudpe-api.md, "Usage"), as a
     * token's API list names it and as its path; named in the 8202 line beside the module's own
     * message.
     */
    const BILLING_METHOD = 'billing.Account.GetAccountBillingHistoryByPeriodInner (billing/account/rest/getaccountbillinghistorybyperiodinner)';
    /** Environment variable naming a failpoint (tests). */
    const FAILPOINT_VARIABLE = 'CLOUDPE_USAGE_FAILPOINT';
    /** Where the import may be killed, in order. */
    const FAILPOINTS = array('before-ledger', 'after-ledger', 'before-push', 'after-push', 'after-mark', 'before-cursor', 'in-cursor');
    const STATUS_CANDIDATES = array('Active', 'Suspended');
    const HOUR_PATTERN = '/^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):00:00Z$/';

    /** @var cloudpe connected to one App */
    private $module;
    /** @var object ApiWrapper */
    private $api;
    /** @var cloudpe_db */
    private $db;
    /** @var callable fn(): int */
    private $clock;
    /** @var array<string, bool|string> product id => true, or why it cannot take the usage */
    private $products = array();
    /** @var array the run's counts */
    private $result;
    /** @var array<string, bool> accounts whose earlier rows could not be settled this run */
    private $blocked = array();

    /**
     * @param cloudpe $module connected to one App
     * @param object|null $api ApiWrapper
     * @param object|null $db PDO (default HBRegistry::db())
     * @param callable|null $clock fn(): int, the Unix time (default time())
     */
    public function __construct(cloudpe $module, $api = null, $db = null, $clock = null)
    {
        $this->module = $module;
        $this->api = $api ?: new ApiWrapper();
        $this->db = cloudpe_db::of($db);
        $this->clock = $clock ?: function () {
            return time();
        };
    }

    /**
     * Creates the ledger and the cursors (install() and upgrade() only: a CREATE TABLE commits any
     * open transaction, see cloudpe_retries::createTables). Idempotent.
     */
    public static function createTables($db = null)
    {
        $db = cloudpe_db::of($db);
        $db->execute('CREATE TABLE IF NOT EXISTS `' . self::LEDGER . '` ('
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
        $db->execute('CREATE TABLE IF NOT EXISTS `' . self::CURSORS . '` ('
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
     * The hourly task: imports every App whose "Usage import" is `test` or `on`. One line per
     * App; one failing App never stops the others; never throws.
     */
    public static function hourly(cloudpe $prototype, $apps = null, $api = null, $clock = null)
    {
        $apps = $apps ?: new cloudpe_apps($api);
        try {
            $list = $apps->all();
        } catch (\Throwable $e) {
            $message = 'CloudPe usage import: could not list the CloudPe Apps: ' . $prototype->scrub($e->getMessage());
            hbm_log_error($message, cloudpe::LOG_TAG);
            return $message;
        }
        if (!$list) {
            return 'CloudPe usage import: no CloudPe App is set up (Settings → Apps), nothing done';
        }
        $lines = array();
        foreach ($list as $app) {
            $label = "App #{$app['id']}" . ($app['name'] !== '' ? " \"{$app['name']}\"" : '');
            $module = clone $prototype;
            try {
                $module->connect($apps->details($app['id']));
                $result = (new cloudpe_usage($module, $api, null, $clock))->run();
            } catch (\Throwable $e) {
                $result = self::emptyResult('on');
                $result['failure'] = ($e instanceof cloudpe_host_error || $e instanceof cloudpe_apps_error)
                    ? $e->getMessage()
                    : 'stopped by an unexpected error: ' . get_class($e) . ': ' . $e->getMessage();
            }
            if ($result['failure'] !== null) {
                $result['failure'] = $module->scrub($result['failure']);
                hbm_log_error("usage import {$label}: {$result['failure']}", cloudpe::LOG_TAG);
            }
            $lines[] = self::line($label, $result);
        }
        return implode("\n", $lines);
    }

    /** The end of the window a run at `$now` imports: the start of the last hour that ended LAG_SECONDS ago. */
    public static function untilFor($now)
    {
        $end = (int) $now - self::LAG_SECONDS;
        return $end - ($end % 3600);
    }

    /** `$ts` (Unix, whole hour) as the host's ISO form, e.g. 2026-12-06T10:00:00Z. */
    public static function iso($ts)
    {
        return gmdate('Y-m-d\TH:i:s\Z', (int) $ts);
    }

    /** `$ts` as a UTC DATETIME for the module's tables. */
    public static function sqlTime($ts)
    {
        return gmdate('Y-m-d H:i:s', (int) $ts);
    }

    /** A UTC DATETIME of the module's tables as a Unix time, or null. */
    public static function fromSql($text)
    {
        if (!is_string($text) || !preg_match('/^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/', $text, $m)) {
            return null;
        }
        return gmmktime((int) $m[4], (int) $m[5], (int) $m[6], (int) $m[2], (int) $m[3], (int) $m[1]);
    }

    /** An hour as the host writes it (strict: whole hour, UTC, `Z`) as a Unix time, or null. */
    public static function fromIso($text)
    {
        if (!is_string($text) || !preg_match(self::HOUR_PATTERN, $text, $m)) {
            return null;
        }
        $ts = gmmktime((int) $m[4], 0, 0, (int) $m[2], (int) $m[3], (int) $m[1]);
        return self::iso($ts) === $text ? $ts : null; // no 2026-02-30 or hour 24
    }

    /**
     * `date_created` of an hour's usage row: its start, in the time zone of HostBill's PHP (the
     * API takes "PHP format: Y-m-d H:i:s" and names no zone: HostBill is taken to read it as its
     * own local time, see docs/usage.md).
     */
    public static function hostbillTime($ts)
    {
        return date('Y-m-d H:i:s', (int) $ts);
    }

    /** The `output` of an hour's usage row: how the import finds it again. */
    public static function marker($ts)
    {
        return 'CloudPe usage ' . gmdate('Y-m-d\TH:i\Z', (int) $ts);
    }

    /**
     * The App's usage settings, checked: mode, backfill hours, time zone. A value the module
     * cannot use is an error naming the setting and the value (nothing runs for that App).
     *
     * @return array{mode: string, backfill: int, zone: string, csv: string}
     * @throws cloudpe_apps_error
     */
    public static function settingsOf(cloudpe $module)
    {
        $settings = $module->settings();
        $mode = isset($settings[self::SETTING_MODE]) && $settings[self::SETTING_MODE] !== '' ? strtolower($settings[self::SETTING_MODE]) : 'off';
        if (!in_array($mode, self::MODES, true)) {
            throw new cloudpe_apps_error('the App setting "' . self::SETTING_MODE . '" is "' . self::clip($settings[self::SETTING_MODE]) . '": it must be off, test or on');
        }
        $backfill = isset($settings[self::SETTING_BACKFILL]) && $settings[self::SETTING_BACKFILL] !== '' ? $settings[self::SETTING_BACKFILL] : (string) self::DEFAULT_BACKFILL;
        if (!preg_match('/^[0-9]{1,4}$/', $backfill) || (int) $backfill < 1 || (int) $backfill > self::MAX_WINDOW_HOURS) {
            throw new cloudpe_apps_error('the App setting "' . self::SETTING_BACKFILL . '" is "' . self::clip($backfill) . '": it must be a whole number of hours from 1 to ' . self::MAX_WINDOW_HOURS);
        }
        $zone = isset($settings[self::SETTING_ZONE]) && $settings[self::SETTING_ZONE] !== '' ? $settings[self::SETTING_ZONE] : 'UTC';
        if (!preg_match('/^UTC(?:[+-](?:0[0-9]|1[0-4]):(?:00|15|30|45))?$/', $zone)) {
            throw new cloudpe_apps_error('the App setting "' . self::SETTING_ZONE . '" is "' . self::clip($zone) . '": it must be UTC or a fixed offset such as UTC+05:30 or UTC-03:00');
        }
        $csv = isset($settings[self::SETTING_CSV]) ? $settings[self::SETTING_CSV] : '';
        return array('mode' => $mode, 'backfill' => (int) $backfill, 'zone' => $zone, 'csv' => $csv);
    }

    /**
     * Imports the connected App's usage (or, in test mode, writes what it would bill).
     *
     * @return array counts (see emptyResult); failure: null or why the App's import failed
     */
    public function run()
    {
        $serverId = $this->module->serverId();
        if ($serverId === null) {
            $result = self::emptyResult('on');
            $result['failure'] = 'the module is not connected to an App';
            return $result;
        }
        $settings = self::settingsOf($this->module);
        $this->result = self::emptyResult($settings['mode']);
        if ($settings['mode'] === 'off') {
            return $this->result;
        }
        // One import per App at a time (two cron runs overlapping, or a run by hand): two would
        // both see the same pending rows and push them twice. MySQL's named lock is the
        // connection's: a killed run's lock goes with its connection.
        $lock = 'cloudpe_usage_' . $serverId;
        $rows = $this->db->select('SELECT GET_LOCK(:name, 0) AS got', array(':name' => $lock));
        if (!$rows || $rows[0]['got'] !== '1') {
            $this->result['failure'] = 'another usage import of this App is still running (MySQL lock ' . $lock . ' is held): this run did nothing';
            return $this->result;
        }
        try {
            return $this->locked($settings, $serverId);
        } finally {
            $this->db->select('SELECT RELEASE_LOCK(:name) AS released', array(':name' => $lock));
        }
    }

    /** run(), once the App's lock is held. */
    private function locked(array $settings, $serverId)
    {
        $now = (int) call_user_func($this->clock);
        $until = self::untilFor($now);
        $test = $settings['mode'] === 'test';
        if (!$test) {
            // What an earlier run left unpushed is owed first, whatever happens to the account now.
            foreach ($this->db->select('SELECT DISTINCT account_id FROM `' . self::LEDGER . '` WHERE server_id = :server AND state <> :pushed ORDER BY account_id', array(':server' => $serverId, ':pushed' => 'pushed')) as $row) {
                $problem = $this->settle($row['account_id'], null);
                if ($problem !== null) {
                    $this->blocked[$row['account_id']] = true;
                    $this->error($row['account_id'], $problem);
                }
            }
        }
        $sent = array();
        $json = $this->accountsJson($serverId, $until, $settings['backfill'], $test, $sent);
        if (!$sent) {
            return $this->result;
        }
        $spool = fopen('php://temp/maxmemory:' . self::SPOOL_MEMORY, 'w+b');
        if ($spool === false) {
            $this->result['failure'] = 'PHP could not open a temporary stream (php://temp) for the usage rows';
            return $this->result;
        }
        $seen = array();
        $onRow = function (array $row) use (&$sent, &$seen, $until, $spool) {
            $this->take($row, $sent, $seen, $until, $spool);
        };
        try {
            $report = $this->module->usageStreamed($json, count($sent), self::iso($until), self::TIMEOUT, $onRow);
            $json = null;
            if ($report === null) {
                $this->result['failure'] = $this->module->lastError() ?: 'the module host could not be used (see the system log)';
                return $this->result;
            }
            $this->measure($report);
            $this->result['warnings'] = cloudpe_host::warnings($report);
            if (empty($report['ok'])) {
                $this->result['failure'] = $this->failureText($report);
            }
            // Each row is complete for its account: what arrived before a stop (the deadline) is
            // imported; the accounts without a row keep their cursor.
            $this->apply($spool, $until, $test, $settings, $serverId, $sent);
            return $this->result;
        } finally {
            fclose($spool);
            if ($this->result['errors'] > self::ERRORS_LOGGED) {
                hbm_log_error("usage import App #{$serverId}: " . ($this->result['errors'] - self::ERRORS_LOGGED) . ' more account errors (not logged one by one)', cloudpe::LOG_TAG);
            }
        }
    }

    /**
     * The App's accounts as the host's request wants them, JSON-encoded and comma-separated; every
     * page of the App's accounts is read, the Active and Suspended ones are sent with their window
     * (from their cursor, or `$backfill` hours before `$until`), the others counted as skipped.
     * `$sent` gets id => [from, product id, client id].
     */
    private function accountsJson($serverId, $until, $backfill, $test, array &$sent)
    {
        $cursors = array();
        foreach ($this->db->select('SELECT account_id, last_hour, test_hour FROM `' . self::CURSORS . '` WHERE server_id = :server', array(':server' => $serverId)) as $row) {
            $cursors[$row['account_id']] = self::fromSql($test ? $row['test_hour'] : $row['last_hour']);
        }
        $json = '';
        $seen = array();
        cloudpe_sync::eachPage($this->api, array('server_id' => $serverId), "accounts of App #{$serverId}", function (array $rows) use (&$json, &$sent, &$seen, &$cursors, $until, $backfill) {
            foreach ($rows as $row) {
                $id = (string) $row['id'];
                if (isset($seen[$id]) || !preg_match('/^[1-9][0-9]{0,9}$/', $id)) {
                    continue;
                }
                $seen[$id] = true;
                $status = isset($row['status']) ? (string) $row['status'] : '';
                if (!in_array($status, self::STATUS_CANDIDATES, true)) {
                    $this->result['skipped']++;
                    continue;
                }
                $this->result['accounts']++;
                $from = isset($cursors[$id]) && $cursors[$id] !== null ? $cursors[$id] : $until - $backfill * 3600;
                if ($from >= $until) {
                    $this->result['current']++;
                    continue;
                }
                if ($until - $from > self::MAX_WINDOW_HOURS * 3600) {
                    $this->error($id, 'its last imported hour (' . self::iso($from) . ') is more than ' . self::MAX_WINDOW_HOURS . ' hours ago, longer than one import may read: see docs/usage.md "An account far behind"');
                    continue;
                }
                $clientId = isset($row['client_id']) ? (string) $row['client_id'] : '0';
                $account = json_encode(array(
                    'id' => (int) $id,
                    'client_id' => (int) $clientId,
                    'status' => $status,
                    'custom_fields' => (object) $this->module->clientFields($clientId),
                    'usage_from' => self::iso($from),
                ));
                if ($account === false) {
                    throw new cloudpe_apps_error("account #{$id} cannot be encoded as JSON: " . json_last_error_msg());
                }
                $sent[$id] = array($from, isset($row['product_id']) ? (string) $row['product_id'] : '', $clientId);
                $json .= ($json === '' ? '' : ',') . $account;
            }
        });
        return $json;
    }

    /**
     * Takes one row of the report's `usage` as it arrives: checks it against what this run sent
     * and keeps it (as [id, kind, data]) in `$spool`; a row that is not usable becomes an error
     * for its account, and one for an account not sent (or sent once and answered twice) is
     * counted and logged as a contract violation. Nothing is billed here.
     */
    private function take(array $row, array &$sent, array &$seen, $until, $spool)
    {
        $raw = isset($row['account_id']) ? $row['account_id'] : null;
        $id = (is_int($raw) && $raw > 0) || (is_string($raw) && preg_match('/^[1-9][0-9]{0,9}$/', $raw)) ? (string) $raw : null;
        if ($id === null || !isset($sent[$id])) {
            $shown = is_scalar($raw) ? self::clip((string) $raw) : gettype($raw);
            $this->violation("a usage row for account #{$shown}, which this import did not send");
            return;
        }
        if (isset($seen[$id])) {
            $this->violation("a second usage row for account #{$id}");
            $this->keep($spool, array($id, 'void', 'the host answered twice for it (module contract violation); nothing billed'));
            return;
        }
        $seen[$id] = true;
        if (isset($row['error'])) {
            $kind = isset($row['error']['kind']) && is_string($row['error']['kind']) ? self::clip($row['error']['kind']) : 'error';
            $message = isset($row['error']['message']) && is_scalar($row['error']['message']) ? (string) $row['error']['message'] : 'no message';
            $this->keep($spool, array($id, 'error', "{$kind}: " . $this->module->reportText(self::clip($message, 500))));
            return;
        }
        if (isset($row['skipped'])) {
            $this->keep($spool, array($id, 'skipped', is_scalar($row['skipped']) ? $this->module->reportText(self::clip((string) $row['skipped'], 200)) : 'skipped'));
            return;
        }
        list($from) = $sent[$id];
        $problem = null;
        $hours = array();
        if (!isset($row['hours']) || !is_array($row['hours'])) {
            $problem = 'it has neither hours, skipped nor error';
        } elseif (!isset($row['from']) || $row['from'] !== self::iso($from) || !isset($row['until']) || $row['until'] !== self::iso($until)) {
            $problem = 'its window is not the one asked (' . self::iso($from) . ' to ' . self::iso($until) . ')';
        } else {
            $previous = null;
            foreach (array_values($row['hours']) as $i => $hour) {
                $problem = $this->hourProblem($hour, $from, $until, $previous);
                if ($problem !== null) {
                    $problem = 'hour #' . ($i + 1) . ': ' . $problem;
                    break;
                }
                $previous = self::fromIso($hour['start']);
                $facts = array();
                foreach (isset($hour['facts']) ? $hour['facts'] : array() as $name => $value) {
                    // Kept for the log and the CSV: plain, without the App's secrets, bounded.
                    $facts[self::clip($this->module->scrub((string) $name), 64)] = self::clip($this->module->scrub((string) $value), 200);
                }
                $hours[] = array($previous, cloudpe_decimal::normal($hour['cost']), cloudpe_decimal::normal($hour['bonus']), cloudpe_decimal::sub($hour['cost'], $hour['bonus']), $facts);
            }
        }
        if ($problem !== null) {
            $this->keep($spool, array($id, 'void', 'the host\'s usage row is not usable (' . $this->module->reportText($problem) . '); nothing billed'));
            return;
        }
        $this->keep($spool, array($id, 'read', $hours));
    }

    /** Why `$hour` is not a usable hour of [`$from`, `$until`) after `$previous`, or null. */
    private function hourProblem($hour, $from, $until, $previous)
    {
        if (!is_array($hour) || !isset($hour['start']) || !is_string($hour['start'])) {
            return 'no start';
        }
        $start = self::fromIso($hour['start']);
        if ($start === null) {
            return 'its start "' . self::clip($hour['start']) . '" is not a whole UTC hour (2026-12-06T10:00:00Z)';
        }
        if ($start < $from || $start >= $until) {
            return "its start {$hour['start']} is outside the window";
        }
        if ($previous !== null && $start <= $previous) {
            return "its start {$hour['start']} does not follow the hour before it";
        }
        foreach (array('cost', 'bonus') as $amount) {
            if (!isset($hour[$amount]) || !cloudpe_decimal::isAmount($hour[$amount])) {
                $shown = isset($hour[$amount]) && is_scalar($hour[$amount]) ? '"' . self::clip((string) $hour[$amount]) . '"' : 'missing';
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

    /** Applies the kept rows: imports (or, in test mode, writes) each account's hours. */
    private function apply($spool, $until, $test, array $settings, $serverId, array $sent)
    {
        $csv = null;
        rewind($spool);
        while (($line = fgets($spool)) !== false) {
            list($id, $kind, $data) = json_decode($line, true);
            switch ($kind) {
                case 'read':
                    $this->result['read']++;
                    if ($test) {
                        if ($csv === null) {
                            try {
                                $csv = cloudpe_usage_csv::open($settings['csv'], $serverId);
                            } catch (cloudpe_apps_error $e) {
                                $this->result['failure'] = ($this->result['failure'] !== null ? $this->result['failure'] . '; ' : '') . 'test mode: ' . $e->getMessage();
                                return;
                            }
                        }
                        $this->testAccount($id, $data, $until, $csv, $serverId);
                    } else {
                        $this->importAccount($id, $data, $until, $serverId, $sent[$id][1]);
                    }
                    break;
                case 'skipped':
                    $this->result['skipped']++;
                    break;
                default:
                    $this->error($id, $data);
            }
        }
        if ($csv !== null) {
            $csv->close();
            $this->result['csv'] = $csv->path();
        }
    }

    /**
     * One account's hours of [from, `$until`), read: recorded in the ledger, pushed, then the
     * cursor moves to `$until`. Nothing moves when the product cannot take the usage or a push
     * fails: the next run reads the window again (the ledger keeps what was recorded).
     */
    private function importAccount($id, array $hours, $until, $serverId, $product)
    {
        if (isset($this->blocked[$id])) {
            return; // its earlier hours are not settled (counted once, above): nothing newer is pushed
        }
        $problem = $this->productProblem($product);
        if ($problem !== null) {
            $this->error($id, $problem);
            return;
        }
        self::failpoint('before-ledger');
        $now = self::sqlTime(call_user_func($this->clock));
        $billable = array();
        $cost = '0';
        $bonus = '0';
        foreach ($hours as $hour) {
            list($start, $hourCost, $hourBonus, $hourBillable) = $hour;
            $cost = cloudpe_decimal::add($cost, $hourCost);
            $bonus = cloudpe_decimal::add($bonus, $hourBonus);
            if (cloudpe_decimal::compare($hourBillable, '0') <= 0) {
                continue; // nothing to bill: no ledger row, no usage row
            }
            $billable[] = $hour;
            // A second read of an hour (a run stopped before its cursor moved) adds nothing: the
            // first amounts recorded are the ones billed.
            $this->db->execute('INSERT IGNORE INTO `' . self::LEDGER . '` (server_id, account_id, hour, cost, bonus, billable, state, created_at) VALUES (:server, :account, :hour, :cost, :bonus, :billable, :state, :now)', array(
                ':server' => $serverId, ':account' => $id, ':hour' => self::sqlTime($start), ':cost' => $hourCost,
                ':bonus' => $hourBonus, ':billable' => $hourBillable, ':state' => 'pending', ':now' => $now,
            ));
        }
        self::failpoint('after-ledger');
        $pushedBefore = $this->result['pushed'];
        $billedBefore = $this->result['billed'];
        $problem = $this->settle($id, $until);
        if ($problem !== null) {
            $this->error($id, $problem);
            return;
        }
        self::failpoint('before-cursor');
        $this->moveCursor($id, $serverId, 'last_hour', $until);
        $this->result['hours'] += count($hours);
        $this->result['cost'] = cloudpe_decimal::add($this->result['cost'], $cost);
        $this->result['bonus'] = cloudpe_decimal::add($this->result['bonus'], $bonus);
        $pushed = $this->result['pushed'] - $pushedBefore;
        if ($hours) {
            $first = $hours[0][0];
            $last = $hours[count($hours) - 1][0];
            $billed = cloudpe_decimal::sub($this->result['billed'], $billedBefore);
            $this->module->audit()->account($id, self::SOURCE . ': ' . count($hours) . ' hour' . (count($hours) === 1 ? '' : 's') . " with usage, {$pushed} billed ({$billed})", 'CloudPeUsage', true, array(
                array('name' => 'hours (UTC)', 'from' => self::iso($first), 'to' => self::iso($last + 3600)),
                array('name' => 'cost', 'from' => '', 'to' => $cost),
                array('name' => 'bonus', 'from' => '', 'to' => $bonus),
                array('name' => 'billed (cost - bonus)', 'from' => '', 'to' => $billed),
                array('name' => 'source', 'from' => '', 'to' => self::SOURCE),
            ), '', cloudpe_audit::actor());
        }
    }

    /**
     * Settles the account's ledger rows not pushed yet (those of hours before `$until`, or all
     * when null): reconciles the attempted ones with meteredGetUsage, pushes the others.
     *
     * @return string|null null when every such row is pushed, otherwise why not
     */
    private function settle($id, $until)
    {
        $rows = $this->db->select('SELECT id, hour, billable, state, attempted_at FROM `' . self::LEDGER . '` WHERE account_id = :account AND state <> :pushed' . ($until !== null ? ' AND hour < :until' : '') . ' ORDER BY hour', array(':account' => $id, ':pushed' => 'pushed') + ($until !== null ? array(':until' => self::sqlTime($until)) : array()));
        $listing = null;
        foreach ($rows as $row) {
            $hour = self::fromSql($row['hour']);
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
                    $this->db->execute('UPDATE `' . self::LEDGER . '` SET state = :state WHERE id = :id', array(':state' => 'unconfirmed', ':id' => $row['id']));
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

    /** Pushes one ledger row with meteredAddUsage; null when HostBill took it, otherwise why not. */
    private function push($id, array $row, $hour)
    {
        $this->db->execute('UPDATE `' . self::LEDGER . '` SET attempted_at = :now WHERE id = :id', array(':now' => self::sqlTime(call_user_func($this->clock)), ':id' => $row['id']));
        self::failpoint('before-push');
        $amount = cloudpe_decimal::normal($row['billable']);
        $local = self::hostbillTime($hour);
        $reply = $this->api->meteredAddUsage(array(
            'account_id' => (string) $id,
            'variable' => self::VARIABLE,
            'qty' => $amount,
            'charge' => $amount,
            'date_created' => $local,
            'date_updated' => $local,
            'output' => self::marker($hour),
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
            $this->db->execute('UPDATE `' . self::LEDGER . '` SET attempted_at = NULL WHERE id = :id', array(':id' => $row['id']));
            return 'HostBill did not take the usage of ' . self::iso($hour) . ' (meteredAddUsage: ' . self::apiError($reply) . ')';
        }
        // No usable answer: the next run looks for the row before pushing it again.
        return 'HostBill gave no usable answer to meteredAddUsage for ' . self::iso($hour) . ': the next run checks meteredGetUsage before pushing it again';
    }

    private function mark($ledgerId, $usageId)
    {
        $this->db->execute('UPDATE `' . self::LEDGER . '` SET state = :state, usage_id = :usage, pushed_at = :now WHERE id = :id', array(
            ':state' => 'pushed', ':usage' => self::clip((string) $usageId, 32), ':now' => self::sqlTime(call_user_func($this->clock)), ':id' => $ledgerId,
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
            return 'HostBill did not list the account\'s metered usage (meteredGetUsage: ' . self::apiError($reply) . '), needed to check what an earlier, interrupted import pushed';
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
        $marker = self::marker($hour);
        $local = self::hostbillTime($hour);
        foreach ($listing as $value) {
            if ($value[0] === self::VARIABLE && ($value[2] === $marker || ($value[2] === '' && $value[1] === $local))) {
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
        $local = self::hostbillTime($hour);
        foreach ($listing as $value) {
            if ($value[1] !== '' && strcmp($value[1], $local) <= 0) {
                return true;
            }
        }
        return false;
    }

    private static function unconfirmedText($id, $hour)
    {
        return 'the usage of ' . self::iso($hour) . ' was being pushed when an earlier import stopped, and HostBill\'s metered usage (meteredGetUsage) does not reach back to that hour to tell whether it was recorded: it is held, not billed again; check the account\'s metered usage and settle it (docs/usage.md "An unconfirmed hour")';
    }

    /**
     * Moves the account's cursor (`last_hour` or `test_hour`) forward to `$until`, in one
     * transaction: a stop before the commit leaves the old cursor.
     */
    private function moveCursor($id, $serverId, $column, $until)
    {
        $this->db->transaction(function (cloudpe_db $db) use ($id, $serverId, $column, $until) {
            $db->execute('INSERT INTO `' . self::CURSORS . "` (account_id, server_id, {$column}, updated_at) VALUES (:account, :server, :hour, :now) "
                . "ON DUPLICATE KEY UPDATE server_id = VALUES(server_id), {$column} = GREATEST(COALESCE({$column}, VALUES({$column})), VALUES({$column})), updated_at = VALUES(updated_at)", array(
                ':account' => $id, ':server' => $serverId, ':hour' => self::sqlTime($until), ':now' => self::sqlTime(call_user_func($this->clock)),
            ));
            self::failpoint('in-cursor');
        });
    }

    /** Test mode: what would be billed, to the CSV and the system log; the test cursor moves. */
    private function testAccount($id, array $hours, $until, cloudpe_usage_csv $csv, $serverId)
    {
        foreach ($hours as $hour) {
            list($start, $cost, $bonus, $billable, $facts) = $hour;
            $csv->write($id, self::iso($start), $cost, $bonus, $billable, $facts);
            $this->result['hours']++;
            $this->result['cost'] = cloudpe_decimal::add($this->result['cost'], $cost);
            $this->result['bonus'] = cloudpe_decimal::add($this->result['bonus'], $bonus);
            $this->result['billed'] = cloudpe_decimal::add($this->result['billed'], $billable);
            if (++$this->result['test_lines'] <= self::TEST_LINES_LOGGED) {
                $pairs = array();
                foreach ($facts as $name => $value) {
                    $pairs[] = "{$name}={$value}";
                }
                hbm_log_system(cloudpe_text::html("usage import App #{$serverId} (test, nothing billed): account #{$id} hour " . self::iso($start) . " cost {$cost} bonus {$bonus} would bill {$billable}" . ($pairs ? ' (' . implode(', ', $pairs) . ')' : '')), cloudpe::LOG_TAG);
            }
        }
        $this->moveCursor($id, $serverId, 'test_hour', $until);
    }

    /**
     * Why `$product` cannot take the usage (no metered variable cloudpeCost), or null. Asked once
     * per product and run (meteredGetVariables); a HostBill without that call is not checked.
     */
    private function productProblem($product)
    {
        if (!is_callable(array($this->api, 'meteredGetVariables'))) {
            return null;
        }
        if (!isset($this->products[$product])) {
            $reply = $this->api->meteredGetVariables(array('product_id' => $product));
            if (!is_array($reply) || empty($reply['success'])) {
                $this->products[$product] = "HostBill did not list the metered variables of product #{$product} (meteredGetVariables: " . self::apiError($reply) . ')';
            } else {
                $this->products[$product] = "its product #{$product} has no metered variable " . self::VARIABLE . ': give the product the Metered pricing type and the variable of billing/metered.yml (docs/usage.md "Set-up")';
                foreach (isset($reply['variables']) && is_array($reply['variables']) ? $reply['variables'] : array() as $variable) {
                    if (is_array($variable) && isset($variable['variable_name']) && $variable['variable_name'] === self::VARIABLE) {
                        $this->products[$product] = true;
                    }
                }
            }
        }
        return $this->products[$product] === true ? null : $this->products[$product];
    }

    /** The App's failure line for a failed report: 8202, a module without usage, or the error. */
    private function failureText(array $report)
    {
        $error = isset($report['error']) && is_array($report['error']) ? $report['error'] : array();
        $kind = isset($error['kind']) && is_string($error['kind']) ? $error['kind'] : '';
        $code = isset($error['code']) && is_scalar($error['code']) ? (string) $error['code'] : '';
        if ($code === (string) self::PERMISSION_DENIED) {
            return 'CloudPe refused to read the billing history (code ' . self::PERMISSION_DENIED . ', permission denied): allow the method ' . self::BILLING_METHOD . ' for the App\'s session token in CloudPe, or set "' . self::SETTING_MODE . '" to off (CloudPe said: ' . $this->module->errorText($report) . ')';
        }
        if ($kind === 'unsupported') {
            return 'the installed CloudPe component predates the usage import: install a newer signed cloudpe.wasm (README, "Upgrading the module"), or set "' . self::SETTING_MODE . '" to off';
        }
        $text = isset($error['message']) ? $this->module->errorText($report) : 'the usage read failed without a message';
        if ($kind !== '') {
            $text = "{$kind}: {$text}";
        }
        $limit = cloudpe_host::limitNote($report);
        if ($limit !== null) {
            $text .= " ({$limit}; the accounts read before it were imported, the others keep their cursor)";
        }
        return $text;
    }

    private function measure(array $report)
    {
        $summary = isset($report['summary']) && is_array($report['summary']) ? $report['summary'] : array();
        $meter = isset($report['meter']) && is_array($report['meter']) ? $report['meter'] : array();
        $this->result['requests'] = isset($summary['requests']) ? (int) $summary['requests'] : (isset($meter['requests']) ? (int) $meter['requests'] : 0);
    }

    /** Counts and logs a problem of one account (its cursor does not move). */
    private function error($id, $text)
    {
        $text = $this->module->scrub((string) $text);
        $this->result['errors']++;
        if ($this->result['first_error'] === null) {
            $this->result['first_error'] = "account #{$id}: " . self::clip($text, 300);
        }
        if ($this->result['errors'] <= self::ERRORS_LOGGED) {
            hbm_log_error('usage import App #' . $this->module->serverId() . ": account #{$id}: {$text}", cloudpe::LOG_TAG);
        }
    }

    private function violation($what)
    {
        $this->result['violations']++;
        if ($this->result['violations'] <= self::ERRORS_LOGGED) {
            hbm_log_error($this->module->scrub('usage import App #' . $this->module->serverId() . ": refused {$what} (module contract violation); nothing billed"), cloudpe::LOG_TAG);
        }
    }

    private function keep($spool, array $entry)
    {
        $line = json_encode($entry, JSON_PARTIAL_OUTPUT_ON_ERROR | JSON_INVALID_UTF8_SUBSTITUTE);
        if ($line === false || fwrite($spool, $line . "\n") !== strlen($line) + 1) {
            throw new cloudpe_report_error('a usage row could not be kept in PHP\'s temporary stream (php://temp): is the temporary folder full?', false);
        }
    }

    /** The task output's line for one App. */
    public static function line($label, array $r)
    {
        if ($r['mode'] === 'off') {
            return "{$label}: usage import off";
        }
        $test = $r['mode'] === 'test';
        $counts = sprintf(
            '%d accounts (%d read, %d already up to date), %d hours with usage, %s %s (cost %s, bonus %s), %d skipped, %d errors',
            $r['accounts'],
            $r['read'],
            $r['current'],
            $r['hours'],
            $r['billed'],
            $test ? 'would be billed' : 'billed',
            $r['cost'],
            $r['bonus'],
            $r['skipped'],
            $r['errors']
        );
        $extra = '';
        if ($r['reconciled']) {
            $extra .= "; {$r['reconciled']} hours found already in HostBill (earlier run interrupted)";
        }
        if ($r['violations']) {
            $extra .= "; {$r['violations']} rows refused (module contract violation)";
        }
        if ($r['requests']) {
            $extra .= "; {$r['requests']} CloudPe requests";
        }
        if ($test) {
            $extra .= $r['csv'] !== null ? "; test mode, nothing billed: {$r['csv']}" : '; test mode, nothing billed';
        }
        if ($r['first_error'] !== null) {
            $extra .= "; first error: {$r['first_error']}";
        }
        foreach (isset($r['warnings']) ? $r['warnings'] : array() as $warning) {
            $extra .= "; warning: {$warning}";
        }
        $mode = $test ? 'usage import (test)' : 'usage import';
        if ($r['failure'] !== null) {
            return "{$label}: {$mode} FAILED ({$counts}{$extra}): {$r['failure']}";
        }
        return "{$label}: {$mode}: {$counts}{$extra}";
    }

    private static function emptyResult($mode)
    {
        return array(
            'mode' => $mode, 'accounts' => 0, 'read' => 0, 'current' => 0, 'hours' => 0, 'pushed' => 0, 'reconciled' => 0,
            'billed' => '0', 'cost' => '0', 'bonus' => '0', 'skipped' => 0, 'errors' => 0, 'violations' => 0,
            'requests' => 0, 'first_error' => null, 'failure' => null, 'warnings' => array(), 'csv' => null, 'test_lines' => 0,
        );
    }

    /**
     * Kills this process (SIGKILL) when CLOUDPE_USAGE_FAILPOINT names `$point` (optionally
     * `<point>:<n>`, the n-th time): the tests' way to stop the import at each step. Unset (as in
     * production), it does nothing.
     */
    public static function failpoint($point)
    {
        static $hits = array();
        $spec = getenv(self::FAILPOINT_VARIABLE);
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

    /**
     * What the account page shows (cloudpe::getSynchInfo): the end of the last imported hour and
     * the cost imported in HostBill's current billing period (meteredGetUsage's values of the
     * variable). Never throws.
     *
     * @return array{last: string, period: string}
     */
    public static function accountSummary($accountId, $api = null, $db = null)
    {
        $summary = array('last' => 'none yet', 'period' => 'unknown');
        try {
            $rows = cloudpe_db::of($db)->select('SELECT last_hour FROM `' . self::CURSORS . '` WHERE account_id = :account', array(':account' => (string) $accountId));
            $last = $rows ? self::fromSql($rows[0]['last_hour']) : null;
            if ($last !== null) {
                $summary['last'] = 'every hour before ' . gmdate('Y-m-d H:i', $last) . ' UTC';
            }
        } catch (\Throwable $e) {
            $summary['last'] = 'unknown (' . $e->getMessage() . ')';
        }
        $api = $api ?: new ApiWrapper();
        $reply = $api->meteredGetUsage(array('account_id' => (string) $accountId));
        if (!is_array($reply) || empty($reply['success'])) {
            $summary['period'] = 'unknown (meteredGetUsage: ' . self::apiError($reply) . ')';
            return $summary;
        }
        $sum = '0';
        foreach (isset($reply['variables']) && is_array($reply['variables']) ? $reply['variables'] : array() as $variable) {
            if (!is_array($variable) || !isset($variable['variable_name']) || $variable['variable_name'] !== self::VARIABLE) {
                continue;
            }
            foreach (isset($variable['values']) && is_array($variable['values']) ? $variable['values'] : array() as $value) {
                $charge = is_array($value) && isset($value['charge']) && is_scalar($value['charge']) ? (string) $value['charge'] : '';
                if (!cloudpe_decimal::isAmount($charge)) {
                    $summary['period'] = 'unknown (HostBill listed a charge that is not a decimal)';
                    return $summary;
                }
                $sum = cloudpe_decimal::add($sum, $charge);
            }
        }
        $summary['period'] = $sum . ' (' . self::VARIABLE . ', HostBill\'s current billing period)';
        return $summary;
    }

    /** The error text of a failed Admin API reply. */
    private static function apiError($reply)
    {
        if (is_array($reply) && isset($reply['error'])) {
            return self::clip(is_array($reply['error']) ? implode('; ', array_map('strval', $reply['error'])) : (string) $reply['error'], 300);
        }
        return 'no usable reply';
    }

    private static function clip($text, $max = 40)
    {
        $text = is_scalar($text) ? (string) $text : gettype($text);
        return strlen($text) > $max ? substr($text, 0, $max) . '...' : $text;
    }
}
