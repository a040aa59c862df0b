<?php

require_once __DIR__ . '/class.cloudpe.php';

/**
 * The reconciliation of HostBill's accounts with CloudPe's users, one App at a time (the cron's
 * monthly task). Per App: every account of the App, whatever its status, with its client's
 * CloudPe id and email (one getClientDetails per client) and its product's module options
 * (cloudpe_products), goes to the host's read-only `reconcile`, which pages through CloudPe's
 * users once. The task output has one line per App: the counts of each finding and its first
 * entries, the links it proposes (for accounts without a CloudPe id whose client's email is
 * exactly one CloudPe user's) and the accounts whose CloudPe user is in another group than their
 * product names. Nothing is written on either side: the proposals are only stored, for the
 * admin's "Apply proposed links" (cloudpe_links).
 */
class cloudpe_reconcile
{
    /** Seconds one App's reconciliation may take before PHP stops the host. */
    const TIMEOUT = 900;
    /** Entries of each list shown on the App's line. */
    const SHOWN = 5;
    /** The findings, in the order the line tells them: list key => label. */
    const FINDINGS = array(
        'without_id' => 'without a valid CloudPe id',
        'missing_remote' => 'pointing at ids CloudPe does not have',
        'shared_users' => 'CloudPe users shared by 2+ accounts',
        'unlinked_users' => 'CloudPe users no account points at',
        'email_differences' => 'email differences',
        'proposed_links' => 'proposed links (an admin applies each with the button Link proposed CloudPe user on the account page)',
        'group_drift' => 'accounts in another CloudPe group than their product\'s',
    );

    /** @var cloudpe connected to one App */
    private $module;
    /** @var object ApiWrapper */
    private $api;
    /** @var cloudpe_apps */
    private $apps;
    /** @var string[] why some products' options are unknown (told on the line) */
    private $productProblems = array();

    public function __construct(cloudpe $module, $api = null, $apps = null)
    {
        $this->module = $module;
        $this->api = $api ?: new ApiWrapper();
        $this->apps = $apps ?: new cloudpe_apps($this->api);
    }

    /**
     * Reconciles every App of the module; one line per App, failures in the system log too.
     *
     * @param cloudpe $prototype the controller's module (not connected)
     * @param cloudpe_apps|null $apps
     * @param object|null $api ApiWrapper
     * @return string
     */
    public static function monthly(cloudpe $prototype, $apps = null, $api = null)
    {
        $apps = $apps ?: new cloudpe_apps($api);
        return cloudpe_apps::each($prototype, $apps, 'CloudPe reconciliation', function (cloudpe $module, $label) use ($api, $apps) {
            $line = $label . ' reconciliation: ' . (new cloudpe_reconcile($module, $api, $apps))->run();
            hbm_log_system($line, cloudpe::LOG_TAG);
            return $line;
        }, function (cloudpe $module, $label, $why) {
            $line = "{$label} reconciliation: FAILED: " . $module->scrub($why);
            hbm_log_error($line, cloudpe::LOG_TAG);
            return $line;
        });
    }

    /**
     * Reconciles the connected App: the findings as one line.
     *
     * @throws cloudpe_host_error|cloudpe_apps_error when it could not run
     */
    public function run()
    {
        $serverId = $this->module->serverId();
        if ($serverId === null) {
            throw new cloudpe_apps_error('the module is not connected to an App');
        }
        $accounts = $this->accounts($serverId);
        $report = $this->module->reconcileAccounts($accounts, self::TIMEOUT);
        if ($report === null) {
            throw new cloudpe_host_error($this->module->lastError() ?: 'the module host could not be used (see the system log)');
        }
        if (empty($report['ok']) || !isset($report['reconciliation']) || !is_array($report['reconciliation'])) {
            $why = isset($report['error']['message']) ? $this->module->errorText($report) : 'the host answered without a reconciliation';
            $limit = cloudpe_host::limitNote($report);
            throw new cloudpe_host_error($why . ($limit !== null ? " ({$limit})" : ''));
        }
        $reconciliation = $report['reconciliation'];
        $refused = self::screen($reconciliation, array_column($accounts, 'id'));
        $refused = array_merge($refused, self::screenProposals($reconciliation, $accounts));
        if ($refused) {
            foreach (array_slice($refused, 0, 20) as $what) {
                hbm_log_error($this->module->scrub("reconciliation App #{$serverId}: refused {$what} (module contract violation: a module reports only on the accounts it was sent, once per finding); not shown"), cloudpe::LOG_TAG);
            }
        }
        if (!isset($reconciliation['counts']['accounts']) && isset($reconciliation['counts']) && is_array($reconciliation['counts'])) {
            $reconciliation['counts']['accounts'] = count($accounts);
        }
        $line = self::describe($reconciliation, array_merge(cloudpe_host::warnings($report), $this->productProblems));
        if ($refused) {
            $line .= '; ' . count($refused) . ' entries refused (module contract violation: ' . $refused[0] . (count($refused) > 1 ? ', ...' : '') . ')';
        }
        $line .= $this->storeProposals($serverId, isset($reconciliation['proposed_links']) ? $reconciliation['proposed_links'] : array());
        return $this->module->scrub($line);
    }

    /**
     * Keeps the App's proposed links for the admin's "Apply proposed links" (replacing the last
     * reconciliation's): only stored, never applied. The line's note when they could not be.
     */
    private function storeProposals($serverId, array $proposals)
    {
        $rows = array();
        foreach ($proposals as $p) {
            $rows[] = array('account_id' => (string) $p['account_id'], 'client_id' => (string) $p['client_id'], 'uid' => (string) $p['uid'], 'email' => isset($p['email']) && is_scalar($p['email']) ? (string) $p['email'] : '');
        }
        try {
            cloudpe_links::store($serverId, $rows);
        } catch (cloudpe_apps_error $e) {
            $why = $this->module->scrub($e->getMessage());
            hbm_log_error("reconciliation App #{$serverId}: the proposed links could not be kept for Apply proposed links: {$why}", cloudpe::LOG_TAG);
            return $rows ? '; the proposed links could not be kept for Apply proposed links (see the system log)' : '';
        }
        return '';
    }

    /**
     * Drops a proposed link that cannot be one (issue 23: a link is proposed only for an account
     * without a CloudPe id): for an account whose client has a CloudPe id, or without a positive
     * whole-number uid. Adds each entry's `client_id` (the client the account was sent with).
     * Returns what was dropped, as phrases.
     */
    public static function screenProposals(array &$r, array $accounts)
    {
        if (!isset($r['proposed_links']) || !is_array($r['proposed_links'])) {
            return array();
        }
        $sent = array();
        foreach ($accounts as $account) {
            $sent[(string) $account['id']] = $account;
        }
        $refused = array();
        $kept = array();
        foreach ($r['proposed_links'] as $entry) {
            $id = (string) $entry['account_id'];
            $uid = isset($entry['uid']) && (is_int($entry['uid']) || is_string($entry['uid'])) ? (string) $entry['uid'] : '';
            $problem = null;
            if (!preg_match('/^[1-9][0-9]{0,19}$/', $uid)) {
                $problem = "a proposed link for account #{$id} without a valid CloudPe uid";
            } elseif ((array) $sent[$id]['custom_fields']) {
                $problem = "a proposed link for account #{$id}, whose client already has a CloudPe id";
            }
            if ($problem !== null) {
                $refused[] = $problem;
                if (isset($r['counts']['proposed_links']) && is_numeric($r['counts']['proposed_links'])) {
                    $r['counts']['proposed_links'] = max(0, (int) $r['counts']['proposed_links'] - 1);
                }
                continue;
            }
            $entry['client_id'] = (string) $sent[$id]['client_id'];
            $kept[] = $entry;
        }
        $r['proposed_links'] = $kept;
        return $refused;
    }

    /**
     * Drops from the findings every entry about an account this reconciliation did not send, and
     * a second entry for one account in the same list (issue 24 item 1: a module reports only on
     * the accounts it was asked about); lowers that list's count by as many. Returns what was
     * dropped, as phrases.
     *
     * @param array $r the report's `reconciliation`, changed in place
     * @param array $sentIds the ids of the accounts sent
     * @return string[]
     */
    public static function screen(array &$r, array $sentIds)
    {
        $sent = array_fill_keys(array_map('strval', $sentIds), true);
        $refused = array();
        foreach (array_keys(self::FINDINGS) as $key) {
            if (!isset($r[$key]) || !is_array($r[$key]) || $key === 'unlinked_users') {
                continue; // unlinked users name no account
            }
            $seen = array();
            $kept = array();
            foreach ($r[$key] as $entry) {
                $ids = array();
                if (is_array($entry) && $key === 'shared_users') {
                    $ids = isset($entry['account_ids']) && is_array($entry['account_ids']) ? $entry['account_ids'] : array(null);
                } elseif (is_array($entry)) {
                    $ids = array(isset($entry['account_id']) ? $entry['account_id'] : null);
                }
                $problem = $ids ? null : 'an entry that names no account';
                foreach ($ids as $raw) {
                    $id = is_int($raw) || (is_string($raw) && $raw !== '') ? (string) $raw : null;
                    if ($id === null || !isset($sent[$id])) {
                        $shown = is_scalar($raw) ? substr((string) $raw, 0, 40) : gettype($raw);
                        $problem = "a finding ({$key}) about account #{$shown}, which this reconciliation did not send";
                    } elseif (isset($seen[$id])) {
                        $problem = "a second finding ({$key}) about account #{$id}";
                    }
                    if ($problem !== null) {
                        break;
                    }
                }
                if ($problem !== null) {
                    $refused[] = $problem;
                    if (isset($r['counts'][$key]) && is_numeric($r['counts'][$key])) {
                        $r['counts'][$key] = max(0, (int) $r['counts'][$key] - 1);
                    }
                    continue;
                }
                foreach ($ids as $raw) {
                    $seen[(string) $raw] = true;
                }
                $kept[] = $entry;
            }
            $r[$key] = $kept;
        }
        return $refused;
    }

    /**
     * Every account of the App, any status, as `reconcile` takes them: id, client_id, status,
     * custom_fields (the client's CloudPe id field) and email (the client's). Every page is read.
     *
     * @throws cloudpe_apps_error when HostBill refuses a page
     */
    public function accounts($serverId)
    {
        $rows = cloudpe_sync::listAccounts($this->api, array('server_id' => $serverId), "accounts of App #{$serverId}");
        $products = cloudpe_products::load($this->module, $this->apps, $serverId);
        $this->productProblems = array_merge($products->problems(), $products->leftOut());
        $accounts = array();
        foreach ($rows as $row) {
            $clientId = isset($row['client_id']) ? $row['client_id'] : '0';
            $email = $this->module->clientEmail($clientId); // reads the client once, for both
            $account = array(
                'id' => $row['id'],
                'client_id' => $clientId,
                'status' => isset($row['status']) ? (string) $row['status'] : '',
                'custom_fields' => (object) $this->module->clientFields($clientId),
                'email' => $email,
            );
            $options = $products->optionsOf($row);
            if ($options) {
                $account['product'] = (object) $options;
            }
            $accounts[] = $account;
        }
        return $accounts;
    }

    /**
     * The line for a report's `reconciliation`: "N accounts, M CloudPe users (R requests); a
     * without a valid CloudPe id: #5 (no id); ...". Each list shows its first SHOWN entries and
     * how many more the counts (the true totals, when the host capped a list) hold.
     */
    public static function describe(array $r, array $warnings = array())
    {
        $counts = isset($r['counts']) && is_array($r['counts']) ? $r['counts'] : array();
        $count = function ($key) use ($counts) {
            return isset($counts[$key]) ? (int) $counts[$key] : 0;
        };
        $line = sprintf('%d accounts, %d CloudPe users', $count('accounts'), $count('remote_users'));
        if (isset($r['requests'])) {
            $line .= sprintf(' (%d CloudPe requests)', (int) $r['requests']);
        }
        $found = array();
        foreach (self::FINDINGS as $key => $label) {
            $n = $count($key);
            if ($n === 0) {
                continue;
            }
            $entries = array();
            foreach (array_slice(isset($r[$key]) && is_array($r[$key]) ? $r[$key] : array(), 0, self::SHOWN) as $entry) {
                $entries[] = self::entry($key, is_array($entry) ? $entry : array());
            }
            $more = $n - count($entries);
            $found[] = "{$n} {$label}" . ($entries ? ': ' . implode(', ', $entries) : '') . ($more > 0 && $entries ? ", +{$more} more" : '');
        }
        $line .= $found ? '; ' . implode('; ', $found) : '; everything matches';
        foreach ($warnings as $warning) {
            $line .= "; warning: {$warning}";
        }
        return $line;
    }

    /** One list entry as text; its values (CloudPe's emails among them) HTML-escaped (class.cloudpe_text.php). */
    private static function entry($key, array $e)
    {
        $v = function ($name) use ($e) {
            return isset($e[$name]) && is_scalar($e[$name]) ? cloudpe_text::html((string) $e[$name]) : '?';
        };
        switch ($key) {
            case 'without_id':
                return "#{$v('account_id')}" . (isset($e['detail']) && is_scalar($e['detail']) ? " ({$v('detail')})" : '');
            case 'missing_remote':
                return "#{$v('account_id')} -> uid {$v('uid')}";
            case 'shared_users':
                $ids = isset($e['account_ids']) && is_array($e['account_ids']) ? $e['account_ids'] : array();
                return "uid {$v('uid')} by #" . implode('+#', array_map(array('cloudpe_text', 'html'), $ids));
            case 'unlinked_users':
                return "uid {$v('uid')}" . (isset($e['email']) && is_scalar($e['email']) ? " {$v('email')}" : '');
            case 'proposed_links':
                return "#{$v('account_id')} (client #{$v('client_id')}) -> uid {$v('uid')} {$v('email')}";
            case 'group_drift':
                return "#{$v('account_id')} uid {$v('uid')} ({$v('expected')} → {$v('actual')})";
            default:
                return "#{$v('account_id')} uid {$v('uid')}: HostBill {$v('hostbill_email')}, CloudPe {$v('remote_email')}";
        }
    }
}
