<?php

require_once __DIR__ . '/class.cloudpe.php';
require_once __DIR__ . '/class.cloudpe_usage_run.php';
require_once __DIR__ . '/class.cloudpe_usage_summary.php';

/**
 * The hourly usage import (issue 22): CloudPe's cost per account and closed hour, read through
 * the host's `usage` command, pushed to HostBill's metered billing (Admin API `meteredAddUsage`,
 * variable `cloudpeCost`, billing/metered.yml) EXACTLY ONCE per account and hour.
 *
 * This class is the import's public face: its constants and settings, the hourly task over every
 * App and the task's line per App, and the hour conversions the other parts share. The work is
 * split (docs/usage.md):
 *
 *  - cloudpe_usage_run: one App's run (lock, windows, accounts, the host call, test mode);
 *  - cloudpe_usage_rows: the reader and validator of the host's (hostile) usage rows;
 *  - cloudpe_usage_ledger: the ledger and cursors, the exactly-once write path, the
 *    reconciliation against meteredGetUsage and the kill tests' failpoints;
 *  - cloudpe_usage_summary: the account page's figures;
 *  - cloudpe_usage_csv: test mode's CSV.
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
 * SIGKILL the n-th time it reaches <point> (see FAILPOINTS, cloudpe_usage_ledger::failpoint);
 * unset, they do nothing.
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

    /**
     * Creates the ledger and the cursors (install() and upgrade() only). Idempotent. See
     * cloudpe_usage_ledger::createTables.
     */
    public static function createTables($db = null)
    {
        cloudpe_usage_ledger::createTables($db);
    }

    /**
     * The hourly task: imports every App whose "Usage import" is `test` or `on`. One line per
     * App; one failing App never stops the others; never throws.
     */
    public static function hourly(cloudpe $prototype, $apps = null, $api = null, $clock = null)
    {
        return cloudpe_apps::each($prototype, $apps ?: new cloudpe_apps($api), 'CloudPe usage import', function (cloudpe $module, $label) use ($api, $clock) {
            return self::finish($module, $label, (new cloudpe_usage_run($module, $api, null, $clock))->run());
        }, function (cloudpe $module, $label, $why) {
            $result = self::emptyResult('on');
            $result['failure'] = $why;
            return self::finish($module, $label, $result);
        });
    }

    /** The task's line for one App's result; a failure is scrubbed and logged too. */
    private static function finish(cloudpe $module, $label, array $result)
    {
        if ($result['failure'] !== null) {
            $result['failure'] = $module->scrub($result['failure']);
            hbm_log_error("usage import {$label}: {$result['failure']}", cloudpe::LOG_TAG);
        }
        return self::line($label, $result);
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

    /** The counts of one App's run, all zero (the run fills them in; line() tells them). */
    public static function emptyResult($mode)
    {
        return array(
            'mode' => $mode, 'accounts' => 0, 'read' => 0, 'current' => 0, 'hours' => 0, 'pushed' => 0, 'reconciled' => 0,
            'billed' => '0', 'cost' => '0', 'bonus' => '0', 'skipped' => 0, 'errors' => 0, 'violations' => 0,
            'requests' => 0, 'first_error' => null, 'failure' => null, 'warnings' => array(), 'csv' => null, 'test_lines' => 0,
        );
    }


    /** The error text of a failed Admin API reply. */
    public static function apiError($reply)
    {
        if (is_array($reply) && isset($reply['error'])) {
            return self::clip(is_array($reply['error']) ? implode('; ', array_map('strval', $reply['error'])) : (string) $reply['error'], 300);
        }
        return 'no usable reply';
    }

    /** `$text` cut to `$max` bytes (then "..."), for a log line or a message. */
    public static function clip($text, $max = 40)
    {
        $text = is_scalar($text) ? (string) $text : gettype($text);
        return strlen($text) > $max ? substr($text, 0, $max) . '...' : $text;
    }
}
