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

    /** @var cloudpe connected to one App */
    private $module;
    /** @var object ApiWrapper */
    private $api;

    public function __construct(cloudpe $module, $api = null)
    {
        $this->module = $module;
        $this->api = $api ?: new ApiWrapper();
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
                $sync = new cloudpe_sync($module, $api);
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
     * Syncs the connected App.
     *
     * @param bool $dryRun report what would change without writing anything
     * @return array counts: read, written, would_change, unchanged, skipped, errors, requests,
     *               elapsed_ms, dry_run; failure: null or why the App could not be synced
     */
    public function run($dryRun = false)
    {
        $result = self::emptyResult($dryRun);
        $serverId = $this->module->serverId();
        if ($serverId === null) {
            $result['failure'] = 'the module is not connected to an App';
            return $result;
        }
        $accounts = $this->accounts($serverId);
        $result['read'] = count($accounts);
        if (!$accounts) {
            return $result;
        }
        // Only changes are written (and logged with their facts); an unchanged account's facts
        // would only grow the report, several times over on a large App.
        $options = array('--omit-unchanged-facts');
        if ($dryRun) {
            $options[] = '--dry-run';
        }
        $report = $this->module->syncAccounts($accounts, $options, self::SYNC_TIMEOUT);
        if ($report === null) {
            $result['failure'] = $this->module->lastError() ?: 'the module host could not be used (see the system log)';
            return $result;
        }
        $result['warnings'] = cloudpe_host::warnings($report);
        if (empty($report['ok'])) {
            $result['failure'] = isset($report['error']['message']) ? $this->module->errorText($report) : 'the sync failed without a message';
            $limit = cloudpe_host::limitNote($report);
            if ($limit !== null) {
                $result['failure'] .= " ({$limit})";
            }
            self::measure($report, $result);
            return $result;
        }
        return $this->apply($report, $result);
    }

    /**
     * The App's candidate accounts (Active, Suspended), with each client's CloudPe id field, as
     * the host expects them. getAccounts is asked per status (`filter[status]`, documented in
     * HostBill's API reference) and every page is read (`sorter.totalpages`, pages numbered from
     * 0); rows that are not candidates anyway (a HostBill that ignores the status filter) are
     * dropped here, so the host only ever sees candidates.
     *
     * @throws cloudpe_apps_error when HostBill refuses a page
     */
    public function accounts($serverId)
    {
        $candidates = self::candidateStatuses();
        $rows = array();
        foreach ($candidates as $status) {
            $listed = self::listAccounts($this->api, array('server_id' => $serverId, 'status' => $status), "{$status} accounts of App #{$serverId}");
            foreach ($listed as $id => $row) {
                if (isset($row['status']) && in_array((string) $row['status'], $candidates, true)) {
                    $rows[$id] = $row;
                }
            }
        }
        $accounts = array();
        foreach ($rows as $row) {
            $clientId = isset($row['client_id']) ? $row['client_id'] : '0';
            $accounts[] = array(
                'id' => $row['id'],
                'client_id' => $clientId,
                'status' => (string) $row['status'],
                'custom_fields' => (object) $this->module->clientFields($clientId),
            );
        }
        return $accounts;
    }

    /**
     * Every account row getAccounts lists for `$filter`, keyed by id: every page is read
     * (`sorter.totalpages`, pages numbered from 0). `$what` names them in the error.
     *
     * @throws cloudpe_apps_error when HostBill refuses a page
     */
    public static function listAccounts($api, array $filter, $what)
    {
        $rows = array();
        $page = 0;
        $pages = 1;
        do {
            $reply = $api->getAccounts(array('filter' => $filter, 'page' => $page));
            if (!is_array($reply) || (isset($reply['success']) && !$reply['success'])) {
                throw new cloudpe_apps_error("HostBill did not list the {$what} (getAccounts, page {$page}): " . self::apiError($reply));
            }
            $found = isset($reply['accounts']) && is_array($reply['accounts']) ? $reply['accounts'] : array();
            foreach ($found as $row) {
                if (isset($row['id'])) {
                    $rows[(string) $row['id']] = $row;
                }
            }
            if ($page === 0) {
                $pages = isset($reply['sorter']['totalpages']) ? max(1, (int) $reply['sorter']['totalpages']) : 1;
            }
            $page++;
        } while ($found && $page < $pages);
        return $rows;
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
        foreach (isset($r['warnings']) ? $r['warnings'] : array() as $warning) {
            $warned .= "; warning: {$warning}";
        }
        return self::outcome($label, $r) . $warned;
    }

    /** The task output's line for one App, without its warnings. */
    private static function outcome($label, array $r)
    {
        $changed = $r['dry_run'] ? "{$r['would_change']} would change (dry run, nothing written)" : "{$r['written']} changed";
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
            'requests' => 0, 'elapsed_ms' => 0, 'measured' => false, 'dry_run' => (bool) $dryRun, 'failure' => null, 'first_error' => null,
            'warnings' => array(),
        );
    }

    /** Writes the changed statuses; logs errors; fills the counts. */
    private function apply(array $report, array $result)
    {
        $result['dry_run'] = !empty($report['dry_run']);
        $app = 'App #' . $this->module->serverId();
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
        foreach (isset($report['decisions']) && is_array($report['decisions']) ? $report['decisions'] : array() as $decision) {
            $id = isset($decision['account_id']) ? $decision['account_id'] : '?';
            switch (isset($decision['decision']) ? $decision['decision'] : '') {
                case 'change':
                case 'would-change':
                    if ($result['dry_run'] || $decision['decision'] !== 'change') {
                        $result['would_change']++;
                        break; // never apply a dry run's decisions, whatever their label
                    }
                    $refused = self::recordStatus($this->api, $id, $decision['to']);
                    $changes = array_merge(
                        array(array('name' => 'status', 'from' => $decision['from'], 'to' => $decision['to'])),
                        cloudpe_audit::factChanges(isset($decision['facts']) ? $decision['facts'] : array())
                    );
                    if ($refused !== null) {
                        $error("account #{$id}: HostBill did not record the status {$decision['to']}: {$refused}");
                        $audit->account($id, 'CloudPe daily sync: status from CloudPe not recorded', 'CloudPeSync', false, $changes, $refused, $automation);
                        break;
                    }
                    $result['written']++;
                    hbm_log_system("sync {$app}: account #{$id}: {$decision['from']} -> {$decision['to']}", cloudpe::LOG_TAG);
                    $audit->account($id, 'CloudPe daily sync: status from CloudPe', 'CloudPeSync', true, $changes, '', $automation);
                    break;
                case 'unchanged':
                    $result['unchanged']++;
                    break;
                case 'skipped':
                    $result['skipped']++;
                    break;
                default:
                    $error("account #{$id}: " . (isset($decision['error']['message']) ? cloudpe_text::html($decision['error']['message']) : 'no decision'));
            }
        }
        self::measure($report, $result);
        return $result;
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
