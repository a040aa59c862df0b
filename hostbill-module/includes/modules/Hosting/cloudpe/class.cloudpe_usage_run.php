<?php

require_once __DIR__ . '/class.cloudpe_decimal.php';
require_once __DIR__ . '/class.cloudpe_usage_csv.php';
require_once __DIR__ . '/class.cloudpe_usage_ledger.php';
require_once __DIR__ . '/class.cloudpe_usage_rows.php';

/**
 * One App's usage import (cloudpe_usage::hourly runs one per App): under the App's MySQL lock,
 * settles what an earlier run left unpushed, works out each account's window (from its cursor,
 * or "Usage backfill hours" back), sends the accounts to the host's streamed `usage` read
 * (rows checked by cloudpe_usage_rows), then per account either writes the ledger, pushes and
 * moves the cursor (cloudpe_usage_ledger), or, in test mode, writes the CSV. Returns the counts
 * the task's line tells.
 */
class cloudpe_usage_run
{
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
    /** @var cloudpe_usage_ledger */
    private $ledger;
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
     * Imports the connected App's usage (or, in test mode, writes what it would bill).
     *
     * @return array counts (see cloudpe_usage::emptyResult); failure: null or why the App's import failed
     */
    public function run()
    {
        $serverId = $this->module->serverId();
        if ($serverId === null) {
            $result = cloudpe_usage::emptyResult('on');
            $result['failure'] = 'the module is not connected to an App';
            return $result;
        }
        $settings = cloudpe_usage::settingsOf($this->module);
        $this->result = cloudpe_usage::emptyResult($settings['mode']);
        if ($settings['mode'] === 'off') {
            return $this->result;
        }
        $this->ledger = new cloudpe_usage_ledger($this->api, $this->db, $this->clock, $this->result);
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
        $until = cloudpe_usage::untilFor($now);
        $test = $settings['mode'] === 'test';
        if (!$test) {
            // What an earlier run left unpushed is owed first, whatever happens to the account now.
            foreach ($this->ledger->unsettledAccounts($serverId) as $id) {
                $problem = $this->ledger->settle($id, null);
                if ($problem !== null) {
                    $this->blocked[$id] = true;
                    $this->error($id, $problem);
                }
            }
        }
        $sent = array();
        $json = $this->accountsJson($serverId, $until, $settings['backfill'], $test, $sent);
        if (!$sent) {
            return $this->result;
        }
        $spool = fopen('php://temp/maxmemory:' . cloudpe_usage::SPOOL_MEMORY, 'w+b');
        if ($spool === false) {
            $this->result['failure'] = 'PHP could not open a temporary stream (php://temp) for the usage rows';
            return $this->result;
        }
        $rows = new cloudpe_usage_rows($this->module, $sent, $until, $spool, $this->result);
        $onRow = function (array $row) use ($rows) {
            $rows->take($row);
        };
        try {
            $report = $this->module->usageStreamed($json, count($sent), cloudpe_usage::iso($until), cloudpe_usage::TIMEOUT, $onRow);
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
            $this->apply($rows, $until, $test, $settings, $serverId, $sent);
            return $this->result;
        } finally {
            fclose($spool);
            if ($this->result['errors'] > cloudpe_usage::ERRORS_LOGGED) {
                hbm_log_error("usage import App #{$serverId}: " . ($this->result['errors'] - cloudpe_usage::ERRORS_LOGGED) . ' more account errors (not logged one by one)', cloudpe::LOG_TAG);
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
        $cursors = $this->ledger->cursors($serverId, $test);
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
                if (!in_array($status, cloudpe_usage::STATUS_CANDIDATES, true)) {
                    $this->result['skipped']++;
                    continue;
                }
                $this->result['accounts']++;
                $from = isset($cursors[$id]) && $cursors[$id] !== null ? $cursors[$id] : $until - $backfill * 3600;
                if ($from >= $until) {
                    $this->result['current']++;
                    continue;
                }
                if ($until - $from > cloudpe_usage::MAX_WINDOW_HOURS * 3600) {
                    $this->error($id, 'its last imported hour (' . cloudpe_usage::iso($from) . ') is more than ' . cloudpe_usage::MAX_WINDOW_HOURS . ' hours ago, longer than one import may read: see docs/usage.md "An account far behind"');
                    continue;
                }
                $clientId = isset($row['client_id']) ? (string) $row['client_id'] : '0';
                $account = json_encode(array(
                    'id' => (int) $id,
                    'client_id' => (int) $clientId,
                    'status' => $status,
                    'custom_fields' => (object) $this->module->clientFields($clientId),
                    'usage_from' => cloudpe_usage::iso($from),
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

    /** Applies the kept rows: imports (or, in test mode, writes) each account's hours. */
    private function apply(cloudpe_usage_rows $rows, $until, $test, array $settings, $serverId, array $sent)
    {
        $csv = null;
        foreach ($rows->kept() as list($id, $kind, $data)) {
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
        cloudpe_usage_ledger::failpoint('before-ledger');
        $now = cloudpe_usage::sqlTime(call_user_func($this->clock));
        $cost = '0';
        $bonus = '0';
        foreach ($hours as $hour) {
            list($start, $hourCost, $hourBonus, $hourBillable) = $hour;
            $cost = cloudpe_decimal::add($cost, $hourCost);
            $bonus = cloudpe_decimal::add($bonus, $hourBonus);
            if (cloudpe_decimal::compare($hourBillable, '0') <= 0) {
                continue; // nothing to bill: no ledger row, no usage row
            }
            $this->ledger->record($serverId, $id, $start, $hourCost, $hourBonus, $hourBillable, $now);
        }
        cloudpe_usage_ledger::failpoint('after-ledger');
        $pushedBefore = $this->result['pushed'];
        $billedBefore = $this->result['billed'];
        $problem = $this->ledger->settle($id, $until);
        if ($problem !== null) {
            $this->error($id, $problem);
            return;
        }
        cloudpe_usage_ledger::failpoint('before-cursor');
        $this->ledger->moveCursor($id, $serverId, 'last_hour', $until);
        $this->result['hours'] += count($hours);
        $this->result['cost'] = cloudpe_decimal::add($this->result['cost'], $cost);
        $this->result['bonus'] = cloudpe_decimal::add($this->result['bonus'], $bonus);
        $pushed = $this->result['pushed'] - $pushedBefore;
        if ($hours) {
            $first = $hours[0][0];
            $last = $hours[count($hours) - 1][0];
            $billed = cloudpe_decimal::sub($this->result['billed'], $billedBefore);
            $this->module->audit()->account($id, cloudpe_usage::SOURCE . ': ' . count($hours) . ' hour' . (count($hours) === 1 ? '' : 's') . " with usage, {$pushed} billed ({$billed})", 'CloudPeUsage', true, array(
                array('name' => 'hours (UTC)', 'from' => cloudpe_usage::iso($first), 'to' => cloudpe_usage::iso($last + 3600)),
                array('name' => 'cost', 'from' => '', 'to' => $cost),
                array('name' => 'bonus', 'from' => '', 'to' => $bonus),
                array('name' => 'billed (cost - bonus)', 'from' => '', 'to' => $billed),
                array('name' => 'source', 'from' => '', 'to' => cloudpe_usage::SOURCE),
            ), '', cloudpe_audit::actor());
        }
    }

    /** Test mode: what would be billed, to the CSV and the system log; the test cursor moves. */
    private function testAccount($id, array $hours, $until, cloudpe_usage_csv $csv, $serverId)
    {
        foreach ($hours as $hour) {
            list($start, $cost, $bonus, $billable, $facts) = $hour;
            $csv->write($id, cloudpe_usage::iso($start), $cost, $bonus, $billable, $facts);
            $this->result['hours']++;
            $this->result['cost'] = cloudpe_decimal::add($this->result['cost'], $cost);
            $this->result['bonus'] = cloudpe_decimal::add($this->result['bonus'], $bonus);
            $this->result['billed'] = cloudpe_decimal::add($this->result['billed'], $billable);
            if (++$this->result['test_lines'] <= cloudpe_usage::TEST_LINES_LOGGED) {
                $pairs = array();
                foreach ($facts as $name => $value) {
                    $pairs[] = "{$name}={$value}";
                }
                hbm_log_system(cloudpe_text::html("usage import App #{$serverId} (test, nothing billed): account #{$id} hour " . cloudpe_usage::iso($start) . " cost {$cost} bonus {$bonus} would bill {$billable}" . ($pairs ? ' (' . implode(', ', $pairs) . ')' : '')), cloudpe::LOG_TAG);
            }
        }
        $this->ledger->moveCursor($id, $serverId, 'test_hour', $until);
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
                $this->products[$product] = "HostBill did not list the metered variables of product #{$product} (meteredGetVariables: " . cloudpe_usage::apiError($reply) . ')';
            } else {
                $this->products[$product] = "its product #{$product} has no metered variable " . cloudpe_usage::VARIABLE . ': give the product the Metered pricing type and the variable of billing/metered.yml (docs/usage.md "Set-up")';
                foreach (isset($reply['variables']) && is_array($reply['variables']) ? $reply['variables'] : array() as $variable) {
                    if (is_array($variable) && isset($variable['variable_name']) && $variable['variable_name'] === cloudpe_usage::VARIABLE) {
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
        if ($code === (string) cloudpe_usage::PERMISSION_DENIED) {
            return 'CloudPe refused to read the billing history (code ' . cloudpe_usage::PERMISSION_DENIED . ', permission denied): allow the method ' . cloudpe_usage::BILLING_METHOD . ' for the App\'s session token in CloudPe, or set "' . cloudpe_usage::SETTING_MODE . '" to off (CloudPe said: ' . $this->module->errorText($report) . ')';
        }
        if ($kind === 'unsupported') {
            return 'the installed CloudPe component predates the usage import: install a newer signed cloudpe.wasm (README, "Upgrading the module"), or set "' . cloudpe_usage::SETTING_MODE . '" to off';
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
            $this->result['first_error'] = "account #{$id}: " . cloudpe_usage::clip($text, 300);
        }
        if ($this->result['errors'] <= cloudpe_usage::ERRORS_LOGGED) {
            hbm_log_error('usage import App #' . $this->module->serverId() . ": account #{$id}: {$text}", cloudpe::LOG_TAG);
        }
    }
}
