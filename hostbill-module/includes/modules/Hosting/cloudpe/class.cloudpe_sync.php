<?php

require_once __DIR__ . '/class.cloudpe.php';

/**
 * The daily status pull, shared by cron controllers: reads every page of the App's accounts,
 * each client's CloudPe id once, runs ONE host sync for all of them (the host pages CloudPe and
 * chunks as needed), and records only the statuses that changed, with editAccountDetails (never
 * accountSuspend/accountUnsuspend, which would call Suspend() again).
 */
class cloudpe_sync
{
    /** Seconds the whole sync may take before the host is stopped. */
    const SYNC_TIMEOUT = 900;

    /** @var cloudpe */
    private $module;
    /** @var ApiWrapper */
    private $api;

    public function __construct(cloudpe $module, $api = null)
    {
        $this->module = $module;
        $this->api = $api ?: new ApiWrapper();
    }

    /**
     * Runs the sync for the module's App. Returns the one-line summary HostBill shows as the
     * cron task's output; per-account errors go to the system log.
     *
     * @param bool $dryRun report what would change without writing anything
     * @return string
     */
    public function run($dryRun = false)
    {
        $serverId = $this->module->serverId();
        if ($serverId === null) {
            hbm_log_error('sync: the module is not connected to an App', cloudpe::LOG_TAG);
            return 'CloudPe sync: no App connected, nothing done';
        }
        $accounts = $this->accounts($serverId);
        if (!$accounts) {
            return "CloudPe sync: no accounts on App #{$serverId}";
        }
        $options = $dryRun ? array('--dry-run') : array();
        $report = $this->module->syncAccounts($accounts, $options, self::SYNC_TIMEOUT);
        if ($report === null) {
            return 'CloudPe sync failed: see the system log';
        }
        if (empty($report['ok'])) {
            return 'CloudPe sync failed: ' . $this->module->scrub($report['error']['message']);
        }
        return $this->apply($report, $accounts);
    }

    /**
     * Every account of the App, with each client's CloudPe id field, as the host expects them.
     * HostBill pages getAccounts (`sorter.totalpages`); pages are numbered from 0.
     */
    public function accounts($serverId)
    {
        $rows = array();
        $page = 0;
        do {
            $reply = $this->api->getAccounts(array('filter' => array('server_id' => $serverId), 'page' => $page));
            foreach (isset($reply['accounts']) ? $reply['accounts'] : array() as $row) {
                $rows[] = $row;
            }
            $pages = isset($reply['sorter']['totalpages']) ? (int) $reply['sorter']['totalpages'] : 1;
            $page++;
        } while ($page < $pages);
        $accounts = array();
        foreach ($rows as $row) {
            $accounts[] = array(
                'id' => $row['id'],
                'client_id' => $row['client_id'],
                'status' => $row['status'],
                'custom_fields' => $this->module->clientFields($row['client_id']),
            );
        }
        return $accounts;
    }

    /** Writes the changed statuses; logs errors; returns the summary line. */
    private function apply(array $report, array $accounts)
    {
        $dryRun = !empty($report['dry_run']);
        $written = 0;
        $failed = 0;
        foreach ($report['decisions'] as $decision) {
            $id = $decision['account_id'];
            switch ($decision['decision']) {
                case 'change':
                    if ($dryRun) {
                        break; // never apply a dry run's decisions, whatever their label
                    }
                    $reply = $this->api->editAccountDetails(array('id' => $id, 'status' => $decision['to']));
                    if (isset($reply['success']) && !$reply['success']) {
                        $failed++;
                        hbm_log_error("sync: account #{$id}: HostBill refused the status {$decision['to']}", cloudpe::LOG_TAG);
                        break;
                    }
                    $written++;
                    hbm_log_system("sync: account #{$id}: {$decision['from']} -> {$decision['to']}", cloudpe::LOG_TAG);
                    break;
                case 'error':
                    $failed++;
                    hbm_log_error('sync: account #' . $id . ': ' . $this->module->scrub($decision['error']['message']), cloudpe::LOG_TAG);
                    break;
            }
        }
        $s = $report['summary'];
        $what = $dryRun ? "{$s['change']} would change (dry run, nothing written)" : "{$written} updated";
        return sprintf(
            'CloudPe sync: %d accounts, %s, %d unchanged, %d skipped, %d errors; %d CloudPe requests in %.1f s',
            count($accounts),
            $what,
            $s['unchanged'],
            $s['skipped'],
            $failed,
            $s['requests'],
            $s['elapsed_ms'] / 1000
        );
    }
}
