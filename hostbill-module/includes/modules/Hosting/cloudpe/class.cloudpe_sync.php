<?php

require_once __DIR__ . '/class.cloudpe.php';

/**
 * The daily status pull. `daily()` syncs every App of the module (see cloudpe_apps for how they
 * are found), each with its own connected module instance, so one failing App never stops the
 * others. Per App, `run()` reads every page of the App's candidate accounts (Active, Suspended),
 * each client's CloudPe id once, runs ONE host sync for all of them (the host pages CloudPe and
 * chunks as needed), and records only the statuses that changed, with editAccountDetails (never
 * accountSuspend/accountUnsuspend, which would call Suspend() again), checking each reply.
 */
class cloudpe_sync
{
    /** Seconds one App's sync may take before PHP stops the host (the host stops itself earlier). */
    const SYNC_TIMEOUT = 900;
    /** The candidate statuses as small integers: what `$sent` keeps per account (negated once decided). */
    const STATUS_CODES = array('Active' => 1, 'Suspended' => 2);
    const STATUS_NAMES = array(1 => 'Active', 2 => 'Suspended');
    /** Bytes of decisions to apply kept in memory; past that php://temp keeps them in a temporary file. */
    const SPOOL_MEMORY = 1048576;
    /** Contract violations logged one by one; past that only their count. */
    const VIOLATIONS_LOGGED = 20;
    /** Accounts in another CloudPe group than their product's named on the App's line; past that only their count. */
    const DRIFT_SHOWN = 5;

    /** @var cloudpe connected to one App */
    private $module;
    /** @var object ApiWrapper */
    private $api;
    /** @var cloudpe_apps */
    private $apps;
    /** @var array<string, int> account id => index in $groups: the CloudPe group its product names (until its decision is read) */
    private $expected = array();
    /** @var string[] the CloudPe groups the App's products name */
    private $groups = array();

    public function __construct(cloudpe $module, $api = null, $apps = null)
    {
        $this->module = $module;
        $this->api = $api ?: new ApiWrapper();
        $this->apps = $apps ?: new cloudpe_apps($this->api);
    }

    /** The HostBill statuses a sync may change; the others are pending or final. */
    public static function candidateStatuses()
    {
        return array('Active', 'Suspended');
    }

    /**
     * Syncs every App of the module. Returns the task output: one line per App (accounts read,
     * changed, errors, or why it failed). Failures also go to the system log.
     *
     * @param cloudpe $prototype the module instance HostBill gives the controller (not connected)
     * @param bool $dryRun report what would change without writing anything
     * @param cloudpe_apps|null $apps
     * @param object|null $api ApiWrapper
     * @return string
     */
    public static function daily(cloudpe $prototype, $dryRun = false, $apps = null, $api = null)
    {
        $apps = $apps ?: new cloudpe_apps($api);
        $lines = array();
        if (cloudpe::leftoverFiles()) {
            $lines[] = 'warning: ' . cloudpe::leftoverMessage();
            hbm_log_error(cloudpe::leftoverMessage(), cloudpe::LOG_TAG);
        }
        try {
            $list = $apps->all();
        } catch (\Throwable $e) {
            $message = 'CloudPe sync: could not list the CloudPe Apps: ' . $prototype->scrub($e->getMessage());
            hbm_log_error($message, cloudpe::LOG_TAG);
            $lines[] = $message;
            return implode("\n", $lines);
        }
        if (!$list) {
            $lines[] = 'CloudPe sync: no CloudPe App is set up (Settings → Apps), nothing done';
            return implode("\n", $lines);
        }
        foreach ($list as $app) {
            $label = "App #{$app['id']}" . ($app['name'] !== '' ? " \"{$app['name']}\"" : '');
            $module = clone $prototype;
            try {
                $module->connect($apps->details($app['id']));
                $sync = new cloudpe_sync($module, $api, $apps);
                $result = $sync->run($dryRun);
            } catch (\Throwable $e) {
                $result = self::emptyResult($dryRun);
                $result['failure'] = ($e instanceof cloudpe_host_error || $e instanceof cloudpe_apps_error)
                    ? $e->getMessage()
                    : 'stopped by an unexpected error: ' . get_class($e) . ': ' . $e->getMessage();
            }
            if ($result['failure'] !== null) {
                $result['failure'] = $module->scrub($result['failure']);
                hbm_log_error("sync {$label}: {$result['failure']}", cloudpe::LOG_TAG);
            }
            $lines[] = self::line($label, $result);
        }
        return implode("\n", $lines);
    }

    /**
     * Syncs the connected App, holding little per account (docs/hostbill.md "Memory"): the
     * accounts are read page by page and written into the request as they come (their id, client,
     * status and client's CloudPe id, nothing more), and the host's decisions are read one by one
     * as it prints them. Only what must be written or logged is kept (in a temporary stream, on
     * disk past SPOOL_MEMORY), and applied once the host's report says the sync succeeded.
     *
     * A decision is applied only to an account this sync sent, once, from the status sent
     * (docs/hostbill.md "The sync's contract"); any other is refused as a module contract
     * violation and nothing is written for it. A change is written only if the account's status
     * (read again just before the write) is still the one sent: otherwise it changed meanwhile.
     *
     * @param bool $dryRun report what would change without writing anything
     * @return array counts: read, written, would_change, unchanged, skipped, errors, changed_meanwhile,
     *               violations, requests, elapsed_ms, dry_run; failure: null or why the App could not be synced
     */
    public function run($dryRun = false)
    {
        $result = self::emptyResult($dryRun);
        $serverId = $this->module->serverId();
        if ($serverId === null) {
            $result['failure'] = 'the module is not connected to an App';
            return $result;
        }
        $sent = array();
        $products = cloudpe_products::load($this->module, $this->apps, $serverId);
        $result['warnings'] = $products->problems();
        $json = $this->accountsJson($serverId, $sent, $products->anyGroup() ? $products : null);
        $result['read'] = count($sent);
        if (!$sent) {
            return $result;
        }
        // Only changes are written (and logged with their facts); an unchanged account's facts
        // would only grow the report, several times over on a large App. When a product names a
        // CloudPe group, every decision's facts are needed to compare its `cloudpe-group`; each
        // decision is still read and dropped one at a time.
        $options = $this->expected ? array() : array('--omit-unchanged-facts');
        if ($dryRun) {
            $options[] = '--dry-run';
        }
        $spool = fopen('php://temp/maxmemory:' . self::SPOOL_MEMORY, 'w+b');
        if ($spool === false) {
            $result['failure'] = 'PHP could not open a temporary stream (php://temp) for the decisions to apply';
            return $result;
        }
        $app = 'App #' . $serverId;
        $onDecision = function (array $decision) use (&$sent, &$result, $spool, $app) {
            $this->take($decision, $sent, $result, $spool, $app);
        };
        try {
            $report = $this->module->syncStreamed($json, count($sent), $options, self::SYNC_TIMEOUT, $onDecision);
            $json = null;
            if ($report === null) {
                $result['failure'] = $this->module->lastError() ?: 'the module host could not be used (see the system log)';
                return $result;
            }
            $result['warnings'] = array_merge($result['warnings'], cloudpe_host::warnings($report));
            if ($result['drift'] > 0) {
                hbm_log_system($this->module->scrub("sync {$app}: " . self::driftText($result) . ' (nothing changed)'), cloudpe::LOG_TAG);
            }
            if (empty($report['ok'])) {
                $result['failure'] = isset($report['error']['message']) ? $this->module->errorText($report) : 'the sync failed without a message';
                $limit = cloudpe_host::limitNote($report);
                if ($limit !== null) {
                    $result['failure'] .= " ({$limit})";
                }
                self::measure($report, $result);
                return $result;
            }
            return $this->apply($report, $result, $spool);
        } finally {
            fclose($spool);
            if ($result['violations'] > self::VIOLATIONS_LOGGED) {
                hbm_log_error("sync {$app}: " . ($result['violations'] - self::VIOLATIONS_LOGGED) . ' more decisions refused as module contract violations (not logged one by one)', cloudpe::LOG_TAG);
            }
        }
    }

    /**
     * The App's candidate accounts (Active, Suspended) as the host expects them, each JSON-encoded
     * and comma-separated (the `accounts` of the request), read page by page; `$sent` gets each
     * one's id => status code (STATUS_CODES). getAccounts is asked per status (`filter[status]`,
     * documented in HostBill's API reference) and every page is read (`sorter.totalpages`, pages
     * numbered from 0); rows that are not candidates anyway (a HostBill that ignores the status
     * filter) are dropped here, so the host only ever sees candidates; an account listed twice
     * is sent once. With `$products` (some product names a CloudPe group), each account whose
     * product names one is remembered with it, to compare with its decision's `cloudpe-group`.
     *
     * @throws cloudpe_apps_error when HostBill refuses a page
     */
    public function accountsJson($serverId, array &$sent, $products = null)
    {
        $json = '';
        $this->expected = array();
        $this->groups = array();
        $index = array();
        foreach (self::candidateStatuses() as $status) {
            $codes = self::STATUS_CODES;
            self::eachPage($this->api, array('server_id' => $serverId, 'status' => $status), "{$status} accounts of App #{$serverId}", function (array $rows) use (&$json, &$sent, $codes, $products, &$index) {
                foreach ($rows as $row) {
                    $status = isset($row['status']) ? (string) $row['status'] : '';
                    $id = (string) $row['id'];
                    if (!isset($codes[$status]) || isset($sent[$id])) {
                        continue;
                    }
                    $sent[$id] = $codes[$status];
                    $group = $products !== null ? $products->groupOf($row) : null;
                    if ($group !== null) {
                        if (!isset($index[$group])) {
                            $index[$group] = count($this->groups);
                            $this->groups[] = $group;
                        }
                        $this->expected[$id] = $index[$group];
                    }
                    $clientId = isset($row['client_id']) ? $row['client_id'] : '0';
                    $account = json_encode(array(
                        'id' => $row['id'],
                        'client_id' => $clientId,
                        'status' => $status,
                        'custom_fields' => (object) $this->module->clientFields($clientId),
                    ));
                    if ($account === false) {
                        throw new cloudpe_apps_error("account #{$id} cannot be encoded as JSON: " . json_last_error_msg());
                    }
                    $json .= ($json === '' ? '' : ',') . $account;
                }
            });
        }
        return $json;
    }

    /**
     * Every page getAccounts lists for `$filter`, handed to `$onPage` (its rows with an id) as it
     * is read: every page is read (`sorter.totalpages`, pages numbered from 0). `$what` names
     * them in the error.
     *
     * @param callable $onPage fn(array $rows): void
     * @throws cloudpe_apps_error when HostBill refuses a page
     */
    public static function eachPage($api, array $filter, $what, $onPage)
    {
        $page = 0;
        $pages = 1;
        do {
            $reply = $api->getAccounts(array('filter' => $filter, 'page' => $page));
            if (!is_array($reply) || (isset($reply['success']) && !$reply['success'])) {
                throw new cloudpe_apps_error("HostBill did not list the {$what} (getAccounts, page {$page}): " . self::apiError($reply));
            }
            $found = isset($reply['accounts']) && is_array($reply['accounts']) ? $reply['accounts'] : array();
            if ($page === 0) {
                $pages = isset($reply['sorter']['totalpages']) ? max(1, (int) $reply['sorter']['totalpages']) : 1;
            }
            $reply = null;
            $rows = array();
            foreach ($found as $row) {
                if (is_array($row) && isset($row['id']) && is_scalar($row['id'])) {
                    $rows[] = $row;
                }
            }
            call_user_func($onPage, $rows);
            $page++;
        } while ($found && $page < $pages);
    }

    /**
     * Every account row getAccounts lists for `$filter`, keyed by id: every page is read
     * (`sorter.totalpages`, pages numbered from 0). `$what` names them in the error.
     *
     * @throws cloudpe_apps_error when HostBill refuses a page
     */
    public static function listAccounts($api, array $filter, $what)
    {
        $all = array();
        self::eachPage($api, $filter, $what, function (array $rows) use (&$all) {
            foreach ($rows as $row) {
                $all[(string) $row['id']] = $row;
            }
        });
        return $all;
    }

    /**
     * Records `$status` on account `$id` with editAccountDetails and checks HostBill's reply.
     *
     * @return string|null null when HostBill confirmed it, otherwise its error
     */
    public static function recordStatus($api, $id, $status)
    {
        $reply = $api->editAccountDetails(array('id' => $id, 'status' => $status));
        if (is_array($reply) && !empty($reply['success'])) {
            return null;
        }
        if (is_array($reply) && isset($reply['error'])) {
            return self::apiError($reply);
        }
        return 'its reply (editAccountDetails) did not confirm the change';
    }

    /** The task output's line for one App. */
    public static function line($label, array $r)
    {
        $warned = '';
        if (!empty($r['violations'])) {
            $warned .= "; {$r['violations']} decisions refused (module contract violation: {$r['first_violation']}" . ($r['violations'] > 1 ? ', ...' : '') . ')';
        }
        if (!empty($r['drift'])) {
            $warned .= '; ' . self::driftText($r) . ' (nothing changed)';
        }
        foreach (isset($r['warnings']) ? $r['warnings'] : array() as $warning) {
            $warned .= "; warning: {$warning}";
        }
        return self::outcome($label, $r) . $warned;
    }

    /** "N accounts in another CloudPe group than their product's: #12 (premium → trial), ..., +k more". */
    private static function driftText(array $r)
    {
        $more = $r['drift'] - count($r['drift_shown']);
        return "{$r['drift']} account" . ($r['drift'] === 1 ? '' : 's') . " in another CloudPe group than their product's: " . implode(', ', $r['drift_shown']) . ($more > 0 ? ", +{$more} more" : '');
    }

    /** The task output's line for one App, without its warnings. */
    private static function outcome($label, array $r)
    {
        $changed = $r['dry_run'] ? "{$r['would_change']} would change (dry run, nothing written)" : "{$r['written']} changed";
        if (!empty($r['changed_meanwhile'])) {
            $changed .= ", {$r['changed_meanwhile']} changed meanwhile (not written)";
        }
        if ($r['failure'] !== null) {
            $measured = !empty($r['measured']) ? sprintf('; %d CloudPe requests in %.1f s', $r['requests'], $r['elapsed_ms'] / 1000) : '';
            return "{$label}: FAILED ({$r['read']} accounts read, {$changed}, {$r['errors']} errors{$measured}): {$r['failure']}";
        }
        if ($r['read'] === 0) {
            return "{$label}: 0 accounts read (no Active or Suspended accounts), nothing to sync";
        }
        return sprintf(
            '%s: %d accounts read, %s, %d unchanged, %d skipped, %d errors; %d CloudPe requests in %.1f s%s',
            $label,
            $r['read'],
            $changed,
            $r['unchanged'],
            $r['skipped'],
            $r['errors'],
            $r['requests'],
            $r['elapsed_ms'] / 1000,
            $r['first_error'] !== null ? "; first error: {$r['first_error']}" : ''
        );
    }

    private static function emptyResult($dryRun)
    {
        return array(
            'read' => 0, 'written' => 0, 'would_change' => 0, 'unchanged' => 0, 'skipped' => 0, 'errors' => 0,
            'changed_meanwhile' => 0, 'violations' => 0, 'first_violation' => null,
            'requests' => 0, 'elapsed_ms' => 0, 'measured' => false, 'dry_run' => (bool) $dryRun, 'failure' => null, 'first_error' => null,
            'warnings' => array(), 'drift' => 0, 'drift_shown' => array(),
        );
    }

    /**
     * Takes one decision as it arrives: refuses it if it breaks the module's contract (an account
     * not sent, a second decision for one, a change from another status than the one sent), counts
     * the unchanged and skipped ones, and keeps the others (changes, errors) in `$spool` to apply
     * once the report is complete.
     */
    private function take(array $decision, array &$sent, array &$result, $spool, $app)
    {
        $raw = isset($decision['account_id']) ? $decision['account_id'] : null;
        $id = is_int($raw) || (is_string($raw) && $raw !== '') ? (string) $raw : null;
        $kind = isset($decision['decision']) && is_string($decision['decision']) ? $decision['decision'] : '';
        if ($raw === null && $kind === 'error') {
            // The host's own answer to a row it could not read names no account (report/mod.rs
            // `InvalidOut`): an error to count, for no account.
            $id = '?';
            $from = '';
        } elseif ($id === null || !isset($sent[$id])) {
            $shown = is_scalar($raw) ? (string) $raw : gettype($raw);
            $this->violation($result, $app, 'a decision for account #' . (strlen($shown) > 40 ? substr($shown, 0, 40) . '...' : $shown) . ', which this sync did not send');
            return;
        } elseif ($sent[$id] < 0) {
            $this->violation($result, $app, "a second decision for account #{$id}");
            return;
        } else {
            $from = self::STATUS_NAMES[$sent[$id]];
            $sent[$id] = -$sent[$id];
        }
        if (($kind === 'change' || $kind === 'would-change') && (!isset($decision['from']) || $decision['from'] !== $from)) {
            $claimed = isset($decision['from']) && is_scalar($decision['from']) ? substr((string) $decision['from'], 0, 40) : 'no status';
            $this->violation($result, $app, "a change of account #{$id} from {$claimed}, but the sync sent it as {$from}");
            return;
        }
        if (isset($this->expected[$id])) {
            $this->compareGroup($id, $decision, $result);
        }
        if ($kind === 'unchanged') {
            $result['unchanged']++;
            return;
        }
        if ($kind === 'skipped') {
            $result['skipped']++;
            return;
        }
        $line = json_encode(array($id, $from, $decision), JSON_PARTIAL_OUTPUT_ON_ERROR | JSON_INVALID_UTF8_SUBSTITUTE);
        if ($line === false || fwrite($spool, $line . "\n") !== strlen($line) + 1) {
            throw new cloudpe_report_error('the decision for account #' . $id . ' could not be kept in PHP\'s temporary stream (php://temp): is the temporary folder full?', false);
        }
    }

    /**
     * Compares the `cloudpe-group` fact of account `$id`'s decision with the group its product
     * names; a difference is counted and, for the first DRIFT_SHOWN, named (CloudPe's group
     * HTML-escaped). Nothing is written. A decision without the fact tells nothing.
     */
    private function compareGroup($id, array $decision, array &$result)
    {
        $expected = $this->groups[$this->expected[$id]];
        unset($this->expected[$id]);
        $actual = isset($decision['facts']['cloudpe-group']) && is_scalar($decision['facts']['cloudpe-group']) ? trim((string) $decision['facts']['cloudpe-group']) : null;
        if ($actual === null || $actual === $expected) {
            return;
        }
        $result['drift']++;
        if (count($result['drift_shown']) < self::DRIFT_SHOWN) {
            $result['drift_shown'][] = "#{$id} (" . cloudpe_text::html($expected) . ' → ' . cloudpe_text::html($actual === '' ? '(none)' : $actual) . ')';
        }
    }

    /** Counts and logs a decision refused as a module contract violation (nothing is written for it). */
    private function violation(array &$result, $app, $what)
    {
        $result['violations']++;
        $text = "refused {$what} (module contract violation: a module decides only for the accounts it was sent, once each, from the status sent); nothing written";
        if ($result['first_violation'] === null) {
            $result['first_violation'] = $this->module->scrub($what);
        }
        if ($result['violations'] <= self::VIOLATIONS_LOGGED) {
            hbm_log_error($this->module->scrub("sync {$app}: {$text}"), cloudpe::LOG_TAG);
        }
    }

    /**
     * Writes the changed statuses kept in `$spool`, each only if the account is still as the sync
     * sent it; logs errors; fills the counts.
     */
    private function apply(array $report, array $result, $spool)
    {
        $result['dry_run'] = $result['dry_run'] || !empty($report['dry_run']);
        $serverId = (string) $this->module->serverId();
        $app = 'App #' . $serverId;
        $audit = $this->module->audit();
        $automation = cloudpe_audit::actor();
        $error = function ($text) use (&$result, $app) {
            $text = $this->module->scrub($text);
            $result['errors']++;
            if ($result['first_error'] === null) {
                $result['first_error'] = strlen($text) > 300 ? substr($text, 0, 300) . '...' : $text;
            }
            hbm_log_error("sync {$app}: {$text}", cloudpe::LOG_TAG);
        };
        rewind($spool);
        while (($line = fgets($spool)) !== false) {
            list($id, $from, $decision) = json_decode($line, true);
            $line = null;
            switch (isset($decision['decision']) ? $decision['decision'] : '') {
                case 'change':
                case 'would-change':
                    if ($result['dry_run'] || $decision['decision'] !== 'change') {
                        $result['would_change']++;
                        break; // never apply a dry run's decisions, whatever their label
                    }
                    $to = isset($decision['to']) && is_scalar($decision['to']) ? (string) $decision['to'] : '';
                    $now = $this->currentStatus($id, $serverId);
                    if ($now !== $from) {
                        // Staff (or another task) changed the account while the host ran: its
                        // status now is not what CloudPe's answer was compared with.
                        $result['changed_meanwhile']++;
                        hbm_log_system($this->module->scrub("sync {$app}: account #{$id}: {$to} from CloudPe not written: the account changed while the sync ran (sent as {$from}, now {$now})"), cloudpe::LOG_TAG);
                        break;
                    }
                    $refused = self::recordStatus($this->api, $id, $to);
                    $changes = array_merge(
                        array(array('name' => 'status', 'from' => $from, 'to' => $to)),
                        cloudpe_audit::factChanges(isset($decision['facts']) && is_array($decision['facts']) ? $decision['facts'] : array())
                    );
                    if ($refused !== null) {
                        $error("account #{$id}: HostBill did not record the status {$to}: {$refused}");
                        $audit->account($id, 'CloudPe daily sync: status from CloudPe not recorded', 'CloudPeSync', false, $changes, $refused, $automation);
                        break;
                    }
                    $result['written']++;
                    hbm_log_system("sync {$app}: account #{$id}: {$from} -> {$to}", cloudpe::LOG_TAG);
                    $audit->account($id, 'CloudPe daily sync: status from CloudPe', 'CloudPeSync', true, $changes, '', $automation);
                    break;
                default:
                    $error("account #{$id}: " . (isset($decision['error']['message']) && is_scalar($decision['error']['message']) ? cloudpe_text::html($decision['error']['message']) : 'no decision'));
            }
        }
        self::measure($report, $result);
        return $result;
    }

    /**
     * The account's status in HostBill now (getAccountDetails), read just before a write; a
     * phrase instead when HostBill no longer has it or it moved to another App.
     */
    private function currentStatus($id, $serverId)
    {
        $reply = $this->api->getAccountDetails(array('id' => $id));
        if (!is_array($reply) || empty($reply['success']) || !isset($reply['details']) || !is_array($reply['details'])) {
            return 'unreadable (getAccountDetails: ' . self::apiError($reply) . ')';
        }
        $details = $reply['details'];
        if (isset($details['server_id']) && (string) $details['server_id'] !== '' && (string) $details['server_id'] !== $serverId) {
            return "on App #{$details['server_id']}";
        }
        return isset($details['status']) && is_scalar($details['status']) ? (string) $details['status'] : 'without a status';
    }

    /**
     * Fills requests and elapsed_ms: the sync's own summary when it has one, otherwise the host's
     * meter (every report carries one, failed ones included).
     */
    private static function measure(array $report, array &$result)
    {
        $summary = isset($report['summary']) && is_array($report['summary']) ? $report['summary'] : array();
        $meter = isset($report['meter']) && is_array($report['meter']) ? $report['meter'] : array();
        $result['requests'] = isset($summary['requests']) ? (int) $summary['requests'] : (isset($meter['requests']) ? (int) $meter['requests'] : 0);
        $result['elapsed_ms'] = isset($summary['elapsed_ms']) ? (int) $summary['elapsed_ms'] : (isset($meter['wall_ms']) ? (int) $meter['wall_ms'] : 0);
        $result['measured'] = $summary || $meter;
    }

    /** The error text of a failed Admin API reply. */
    private static function apiError($reply)
    {
        if (is_array($reply) && isset($reply['error'])) {
            return is_array($reply['error']) ? implode('; ', array_map('strval', $reply['error'])) : (string) $reply['error'];
        }
        return 'no usable reply';
    }
}
