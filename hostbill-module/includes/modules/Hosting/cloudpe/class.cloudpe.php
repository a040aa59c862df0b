<?php

require_once __DIR__ . '/class.cloudpe_host.php';
require_once __DIR__ . '/class.cloudpe_apps.php';
require_once __DIR__ . '/class.cloudpe_db.php';
require_once __DIR__ . '/class.cloudpe_audit.php';
require_once __DIR__ . '/class.cloudpe_lifecycle.php';

/**
 * CloudPe (Virtuozzo Application Platform) provisioning module for HostBill.
 *
 * A thin shell: every action runs one operation of the sandboxed CloudPe component through
 * `hostbill-module-host` (see class.cloudpe_host.php) and translates its report into HostBill's
 * terms (true/false, addError/addInfo, the system log). No action lets an exception past it: each
 * one ends in addError and false.
 *
 * App settings: Host URL (status_url), App Id (field1), Session (field2) in HostBill's own
 * columns; "Client field code", "On terminate", "On create" and "Call log" as custom App settings (CONNECTION_FIELD_CUSTOM),
 * which HostBill stores serialized in the App's `custom` column and hands back in
 * `$connect['custom']`. They are App settings, not product options, because the CloudPe platform
 * (and so the client field that links a client to it, and what deleting there means) is a property
 * of the App, shared by every product linked to it. The one product option, "CloudPe group", is
 * a `loadable` HostBill fills from getGroups() (see $options).
 */
class cloudpe extends HostingModule
{
    /** Tag of every system-log line. */
    const LOG_TAG = 'CloudPe Module';
    /** Names of the custom App settings; the component reads them by these exact names. */
    const SETTING_CLIENT_FIELD = 'Client field code';
    const SETTING_ON_TERMINATE = 'On terminate';
    /** What Create does for a client without a CloudPe id: `link` (default) or `provision` (experimental). */
    const SETTING_ON_CREATE = 'On create';
    /** The product option naming the CloudPe group; the component reads it by this exact name. */
    const OPTION_GROUP = 'CloudPe group';
    /** Opt-in per-call log: `on` writes each CloudPe call to the system log (see cloudpe_audit::call). */
    const SETTING_CALL_LOG = 'Call log';
    /** Default code of the client custom field holding the CloudPe user id. */
    const DEFAULT_ID_FIELD = 'cloudpeid';
    /** Default terminate policy: no CloudPe call. */
    const DEFAULT_ON_TERMINATE = 'none';
    /** Seconds an account operation may take before PHP stops the host (the host stops itself earlier). */
    const OPERATION_TIMEOUT = 120;

    protected $modname = 'CloudPe';
    protected $version = '2.5.0';
    protected $description = 'Links, suspends, unsuspends, moves between groups and syncs CloudPe (Virtuozzo Application Platform) users, through a sandboxed WebAssembly module.';
    /**
     * Product configuration. HostBill loads the product's values into `value` before Create and
     * ChangePackage (for ChangePackage, the NEW package's: the devkit's advancedexample,
     * "$options variable is loaded with new package configuration"). A `loadable` option is a
     * select HostBill fills by calling the module method its `default` names, which returns
     * `[[value, label], ...]`, or false after addError (devkit advancedexample `getPlans`;
     * HostBill's own vmware5 module declares its options the same way, keyed by name).
     */
    protected $options = array(
        self::OPTION_GROUP => array(
            'name' => self::OPTION_GROUP,
            'value' => false,
            'type' => 'loadable',
            'default' => 'getGroups',
            'description' => 'The CloudPe group (tariff and quotas) of this product\'s users: Create (when it provisions) and ChangePackage put the user in it; the daily sync reports users in another group. Empty: the module leaves groups alone',
        ),
    );
    /**
     * Admin-area buttons on the account page: method => label (HostBill calls the method with the
     * account loaded, as EasyDCIM's `$commands = ['updateOrderInformation' => ...]`).
     */
    protected $commands = array('linkProposedUser' => 'Link proposed CloudPe user');
    protected $serverFields = array(
        self::CONNECTION_FIELD_HOSTNAME => false,
        self::CONNECTION_FIELD_IPADDRESS => false,
        self::CONNECTION_FIELD_MAXACCOUNTS => false,
        self::CONNECTION_FIELD_STATUSURL => true,
        self::CONNECTION_FIELD_USERNAME => false,
        self::CONNECTION_FIELD_PASSWORD => false,
        self::CONNECTION_FIELD_INPUT1 => true,
        self::CONNECTION_FIELD_INPUT2 => true,
        self::CONNECTION_FIELD_CHECKBOX => false,
        self::CONNECTION_FIELD_TEXTAREA => false,
        self::CONNECTION_FIELD_NAMESERVERS => false,
        self::CONNECTION_FIELD_CUSTOM => array(
            self::SETTING_CLIENT_FIELD => array(
                'type' => 'input',
                'default' => self::DEFAULT_ID_FIELD,
                'description' => 'Code of the client custom field holding each client\'s CloudPe user id',
            ),
            self::SETTING_ON_TERMINATE => array(
                'type' => 'select',
                'default' => array('none', 'deactivate'),
                'description' => 'What Terminate does on CloudPe: none (no call) or deactivate (user set inactive). Neither deletes the user, but CloudPe itself destroys a deactivated user after its account.destroy.period quota (e.g. 30 days for trial users, 60 for billing users): keep HostBill\'s terminate delay shorter, or have that quota raised',
            ),
            self::SETTING_ON_CREATE => array(
                'type' => 'select',
                'default' => array('link', 'provision'),
                'description' => 'What Create does for a client without a CloudPe user id: link (the CloudPe user with exactly the client\'s email is linked; none or several: Create fails, nothing linked) or provision (EXPERIMENTAL: the same, and when no user has the email, one is created, activated, put in the product\'s CloudPe group and linked; CloudPe mails the user the credentials, the module never keeps the password)',
            ),
            self::SETTING_CALL_LOG => array(
                'type' => 'select',
                'default' => array('off', 'on'),
                'description' => 'on: every CloudPe call (method, parameters with secrets masked, HTTP status, duration, result, the start of the reply) goes to the system log, lines starting "call:"',
            ),
            // The usage import (cloudpe_usage, docs/usage.md).
            'Usage import' => array(
                'type' => 'select',
                'default' => array('off', 'test', 'on'),
                'description' => 'Hourly import of CloudPe usage into metered billing (variable cloudpeCost): off; test (writes what would be billed to the system log and a CSV, bills nothing); on',
            ),
            'Usage backfill hours' => array(
                'type' => 'input',
                'default' => '24',
                'description' => 'Hours before the first import of an account that it also imports (1 to 744)',
            ),
            'Usage time zone' => array(
                'type' => 'input',
                'default' => 'UTC',
                'description' => 'The fixed UTC offset CloudPe\'s billing history is read in (UTC, or e.g. UTC+05:30): CloudPe does not document its API\'s time zone',
            ),
            'Usage test CSV folder' => array(
                'type' => 'input',
                'default' => '',
                'description' => 'Test mode: folder of the CSV of what would be billed (absolute path, owned by the cron\'s user, mode 0700); empty: the module\'s usage-test folder',
            ),
        ),
    );
    /**
     * The linked CloudPe user's facts on the account page: module details, shown by HostBill with
     * their `name` as label and stored with the account (keys other than option1..N go to the
     * account's extra details, as public modules' own keys do). getSynchInfo fills them.
     */
    protected $details = array(
        'cloudpe_uid' => array('name' => 'CloudPe user id', 'value' => '', 'type' => 'input', 'default' => false),
        'cloudpe_email' => array('name' => 'CloudPe email', 'value' => '', 'type' => 'input', 'default' => false),
        'cloudpe_status' => array('name' => 'CloudPe status', 'value' => '', 'type' => 'input', 'default' => false),
        'cloudpe_login' => array('name' => 'CloudPe login', 'value' => '', 'type' => 'input', 'default' => false),
        'cloudpe_group' => array('name' => 'CloudPe group', 'value' => '', 'type' => 'input', 'default' => false),
        'cloudpe_created' => array('name' => 'CloudPe user created', 'value' => '', 'type' => 'input', 'default' => false),
        'cloudpe_synced' => array('name' => 'Last CloudPe sync', 'value' => '', 'type' => 'input', 'default' => false),
        'cloudpe_usage_last' => array('name' => 'CloudPe usage imported', 'value' => '', 'type' => 'input', 'default' => false),
        'cloudpe_usage_period' => array('name' => 'CloudPe usage billed this period', 'value' => '', 'type' => 'input', 'default' => false),
    );
    /** Which report fact fills which detail. */
    const FACT_DETAILS = array(
        'cloudpe-uid' => 'cloudpe_uid', 'cloudpe-email' => 'cloudpe_email', 'cloudpe-status' => 'cloudpe_status',
        'cloudpe-login' => 'cloudpe_login', 'cloudpe-group' => 'cloudpe_group', 'cloudpe-created' => 'cloudpe_created',
    );
    protected $serverFieldsDescription = array(
        self::CONNECTION_FIELD_STATUSURL => 'Host URL',
        self::CONNECTION_FIELD_INPUT1 => 'App Id',
        self::CONNECTION_FIELD_INPUT2 => 'Session',
    );

    /** @var array the App row, as passed to connect() */
    protected $connection = array();
    /** @var array<string, string> the App's custom settings, by name */
    protected $customSettings = array();
    /** @var string|null why the App's custom settings could not be read */
    protected $customError = null;
    /** @var cloudpe_host|null injected host (tests); built from the bundle otherwise */
    protected $host = null;
    /** @var callable|null fn(array $connection, float $timeout, string[] $secrets): cloudpe_host */
    protected $hostFactory = null;
    /**
     * @var array client id => the value of its CloudPe id field ('' when none): all that is kept
     * of a client row, so a sync of 100,000 accounts does not hold 100,000 client rows
     */
    protected $clientFields = array();
    /** @var array<string, string> client id => why HostBill gave no client row (getClientDetails' error) */
    protected $clientErrors = array();
    /** @var array client id => its email, kept only once clientEmail() asked for one */
    protected $clientEmails = array();
    /** @var cloudpe_retries|null the retry queue (tests inject one with a clock) */
    protected $retries = null;
    /** @var bool a retry during its App's logged outage: no system-log lines of its own */
    protected $quiet = false;
    /** @var string|null the last error added by call(), for callers that report it elsewhere */
    protected $lastError = null;

    /** Called by HostBill with the App (server) row before any action. */
    public function connect($connect)
    {
        $this->connection = is_array($connect) ? $connect : array();
        $this->clientFields = array();
        $this->clientErrors = array();
        $this->clientEmails = array();
        $this->lastError = null;
        $this->customError = null;
        $this->customSettings = array();
        try {
            $this->customSettings = self::parseCustom(isset($this->connection['custom']) ? $this->connection['custom'] : null);
        } catch (UnexpectedValueException $e) {
            $this->customError = $e->getMessage();
        }
    }

    /** Uses `$host` for every operation instead of the bundled one (tests, custom installs). */
    public function useHost(cloudpe_host $host)
    {
        $this->host = $host;
    }

    /** Builds each operation's host with `$factory` (tests: fake hosts with the call's timeout). */
    public function useHostFactory($factory)
    {
        $this->hostFactory = $factory;
    }

    public function testConnection()
    {
        return $this->guard('test-connection', function () {
            $result = $this->call('test-connection', array('app' => $this->app()));
            if ($result === null) {
                return false;
            }
            $checks = array();
            foreach (isset($result['report']['checks']) ? $result['report']['checks'] : array() as $check) {
                $checks[] = $this->reportText($check['name']) . ': ' . ($check['passed'] ? 'passed' : 'FAILED') . ' (' . $this->reportText($check['detail']) . ')';
            }
            if ($result['exit'] !== cloudpe_host::EXIT_SUCCESS) {
                $this->showWarnings($result['report']);
                $this->fail($this->errorText($result['report']));
                return false;
            }
            $this->addInfo($this->scrub('CloudPe connection OK: ' . implode('; ', $checks)));
            // A 2.4 component's capability probe: what this token may call, one line each.
            $lifecycle = $this->lifecycle();
            foreach ($lifecycle->capabilityLines($result['report']) as $line) {
                $this->addInfo($this->scrub("CloudPe capability {$line}"));
            }
            $this->showWarnings($result['report']);
            $summary = $this->permissionsSummary(isset($result['report']['endpoint']) ? (string) $result['report']['endpoint'] : null, $lifecycle->capabilitySummary($result['report']));
            if ($summary !== null) {
                $this->addInfo($summary);
            }
            if (self::leftoverFiles()) {
                $this->addInfo(self::leftoverMessage());
            }
            $cache = self::cacheOwnerWarning(self::cacheDir());
            if ($cache !== null) {
                $this->addInfo("Warning: {$cache}");
            }
            return true;
        });
    }

    /**
     * Links the account to its CloudPe user: the client's id verified, or (a 2.4 component) the
     * one user with exactly the client's email found, or, with "On create" = provision, created.
     * The uid is kept in the account's details and, where the client's id field is empty, in it
     * (cloudpe_lifecycle::linked).
     */
    public function Create()
    {
        return $this->guard('create', function () {
            $lifecycle = $this->lifecycle();
            return $this->accountAction('create', array($lifecycle, 'request'), array($lifecycle, 'linked'));
        });
    }

    /**
     * Moves the account's CloudPe user to the NEW package's "CloudPe group" (HostBill loads
     * $options with the new package's configuration before calling this) and reads it back.
     */
    public function ChangePackage()
    {
        return $this->guard('change-package', function () {
            $lifecycle = $this->lifecycle();
            return $this->accountAction('change-package', array($lifecycle, 'request'), array($lifecycle, 'packageChanged'));
        });
    }

    /**
     * The choices of the "CloudPe group" product option (its `loadable` names this method):
     * `[[value, label], ...]` from the component's `option-choices`; on failure false, with the
     * reason added (addError) and logged, as the devkit's loadable getPlans does. Never throws.
     *
     * @return array|false
     */
    public function getGroups()
    {
        return $this->guard('option-choices', function () {
            $result = $this->call('option-choices', array('app' => $this->app(), 'option' => self::OPTION_GROUP));
            if ($result === null) {
                return false;
            }
            if ($result['exit'] !== cloudpe_host::EXIT_SUCCESS) {
                $this->showWarnings($result['report']);
                $this->fail($this->failureText('option-choices', $result['report']));
                return false;
            }
            return $this->lifecycle()->choices($result['report']);
        });
    }

    public function Suspend()
    {
        return $this->guard('suspend', function () {
            return $this->accountAction('suspend');
        });
    }

    public function Unsuspend()
    {
        return $this->guard('unsuspend', function () {
            return $this->accountAction('unsuspend');
        });
    }

    public function Terminate()
    {
        return $this->guard('terminate', function () {
            return $this->accountAction('terminate');
        });
    }

    /**
     * Reads this account's CloudPe user with ONE request (`--strategy exact-lookups`), shows its
     * facts in the account's CloudPe details (uid, email, status, login, group, created, and this
     * sync's time and result), and records a changed status with editAccountDetails (never
     * accountSuspend/accountUnsuspend, which would call Suspend() again), checking HostBill took
     * it and writing the change, with the facts behind it, to the account's log. Returns what
     * public modules return (`suspended` 1/0), or false when CloudPe could not tell or HostBill
     * refused the status.
     */
    public function getSynchInfo()
    {
        return $this->guard('sync', function () {
            $account = $this->account();
            $result = $this->call('sync', array('app' => $this->app(), 'accounts' => array($account)), array('--strategy', 'exact-lookups'));
            if ($result === null) {
                $this->showSync('FAILED: ' . $this->lastError);
                return false;
            }
            if ($result['exit'] !== cloudpe_host::EXIT_SUCCESS || empty($result['report']['decisions'])) {
                $this->fail($this->errorText($result['report']));
                $this->showSync(self::failure($result['report']['error'] ?? array(), $this->lastError));
                return false;
            }
            $decision = $result['report']['decisions'][0];
            $this->showFacts(isset($decision['facts']) ? $decision['facts'] : array());
            $this->showUsage($account['id']);
            $status = (string) $account['status'];
            switch ($decision['decision']) {
                case 'change':
                    $refused = cloudpe_sync::recordStatus(new ApiWrapper(), $account['id'], $decision['to']);
                    $changes = array_merge(array(array('name' => 'status', 'from' => $decision['from'], 'to' => $decision['to'])), cloudpe_audit::factChanges($decision['facts'] ?? array()));
                    if ($refused !== null) {
                        $this->fail("HostBill did not record status {$decision['to']} for account #{$account['id']}: {$refused}");
                        $this->audit()->account($account['id'], 'CloudPe sync (account page): status from CloudPe not recorded', 'CloudPeSync', false, $changes, $this->lastError);
                        $this->showSync("FAILED: {$this->lastError}");
                        return false;
                    }
                    $this->log('info', "account #{$account['id']}: status {$decision['from']} -> {$decision['to']} (from CloudPe)");
                    $this->audit()->account($account['id'], 'CloudPe sync (account page): status from CloudPe', 'CloudPeSync', true, $changes);
                    $status = (string) $decision['to'];
                    $this->showSync("ok, status {$decision['from']} -> {$status} recorded");
                    break;
                case 'unchanged':
                case 'skipped':
                    $this->showSync("ok, status {$status} " . ($decision['decision'] === 'unchanged' ? 'unchanged' : 'not synced (' . ($decision['reason'] ?? 'not a candidate') . ')'));
                    break;
                default:
                    $this->fail($this->errorText($decision));
                    $this->showSync(self::failure($decision['error'] ?? array(), $this->lastError));
                    return false;
            }
            return self::synchInfo($status);
        });
    }

    /** The account's CloudPe details as this instance holds them: detail key => value. */
    public function detailValues()
    {
        $values = array();
        foreach ($this->details as $key => $detail) {
            $values[$key] = isset($detail['value']) ? (string) $detail['value'] : '';
        }
        return $values;
    }

    /** Fills the CloudPe details from a decision's facts (absent facts leave their detail empty). */
    protected function showFacts(array $facts)
    {
        foreach (self::FACT_DETAILS as $fact => $key) {
            $this->details[$key]['value'] = isset($facts[$fact]) && is_scalar($facts[$fact]) ? $this->reportText((string) $facts[$fact]) : '';
        }
    }

    /**
     * With the App's usage import on or in test, fills "CloudPe usage imported" (the end of the
     * last imported hour) and "CloudPe usage billed this period" (meteredGetUsage); never fails
     * the sync.
     */
    protected function showUsage($accountId)
    {
        try {
            if (cloudpe_usage::settingsOf($this)['mode'] === 'off') {
                return;
            }
            $summary = cloudpe_usage_summary::of($accountId);
            $this->details['cloudpe_usage_last']['value'] = cloudpe_text::html($this->scrub($summary['last']));
            $this->details['cloudpe_usage_period']['value'] = cloudpe_text::html($this->scrub($summary['period']));
        } catch (\Throwable $e) {
            $this->details['cloudpe_usage_last']['value'] = cloudpe_text::html($this->scrub('unknown: ' . $e->getMessage()));
        }
    }

    /** Sets "Last CloudPe sync" to now (UTC) and `$result`. */
    protected function showSync($result)
    {
        $this->details['cloudpe_synced']['value'] = gmdate('Y-m-d H:i:s') . ' UTC: ' . $this->scrub((string) $result);
    }

    /** "FAILED (kind): message" for a report's or decision's error. */
    protected static function failure($error, $message)
    {
        $kind = is_array($error) && isset($error['kind']) ? " ({$error['kind']})" : '';
        return "FAILED{$kind}: {$message}";
    }

    /**
     * getSynchInfo's answer for a HostBill status: `suspended` 1/0 as public modules return it.
     * For a status that is neither (Terminated), no `suspended` key: the status was already
     * written, and a 0 must not read as "unsuspend".
     */
    public static function synchInfo($status)
    {
        if ($status === 'Suspended') {
            return array('suspended' => 1);
        }
        if ($status === 'Active') {
            return array('suspended' => 0);
        }
        return array('cloudpe_status' => (string) $status);
    }

    /** Called by HostBill when the module is activated: registers the daily sync task. */
    public function install()
    {
        return $this->guard('install', function () {
            return $this->prepareCron('install');
        });
    }

    /** Called by HostBill when $version is newer than the installed one (e.g. over 1.0.x). */
    public function upgrade($previous)
    {
        return $this->guard('upgrade', function () use ($previous) {
            return $this->prepareCron('upgrade from ' . (is_scalar($previous) ? (string) $previous : 'an older version'));
        });
    }

    /**
     * Runs one host sync for `$accounts` (rows as the host expects them) and returns its report,
     * or null when the host could not be used (the error is in lastError() and the system log).
     */
    public function syncAccounts(array $accounts, array $options = array(), $timeout = 900)
    {
        $result = $this->call('sync', array('app' => $this->app(), 'accounts' => $accounts), $options, $timeout);
        return $result === null ? null : $result['report'];
    }

    /**
     * Runs one host sync on the request `{"app": ..., "accounts": [<$accountsJson>]}` (the
     * accounts already JSON-encoded, comma-separated: a large App's are written as they are read)
     * and hands each decision to `$onDecision` as it arrives (cloudpe_host::stream). Returns the
     * report without its decisions, or null when the host could not be used (the error is in
     * lastError() and the system log).
     *
     * @param callable $onDecision fn(array $decision, int $index): void
     */
    public function syncStreamed($accountsJson, $count, array $options, $timeout, $onDecision)
    {
        $input = '{"app":' . json_encode($this->app()) . ',"accounts":[' . $accountsJson . ']}';
        $accountsJson = null;
        $subject = "sync of {$count} account" . ($count === 1 ? '' : 's');
        try {
            $result = $this->host($timeout)->stream('sync', $input, $options, $onDecision);
        } catch (cloudpe_host_error $e) {
            $message = $this->scrub($e->getMessage());
            hbm_log_error("sync: {$message}", self::LOG_TAG);
            $this->fail("CloudPe module: {$message}");
            return null;
        }
        return $this->received('sync', $subject, $result)['report'];
    }

    /**
     * Runs the host's `usage` on the request `{"app": ..., "usage_until": ..., "accounts":
     * [<$accountsJson>]}` and hands each row of the report's `usage` to `$onRow` as it arrives.
     * Returns the report without its rows, or null when the host could not be used (the error is
     * in lastError() and the system log).
     *
     * @param callable $onRow fn(array $row, int $index): void
     */
    public function usageStreamed($accountsJson, $count, $until, $timeout, $onRow)
    {
        $input = '{"app":' . json_encode($this->app()) . ',"usage_until":' . json_encode((string) $until) . ',"accounts":[' . $accountsJson . ']}';
        $accountsJson = null;
        $subject = "usage of {$count} account" . ($count === 1 ? '' : 's');
        try {
            $result = $this->host($timeout)->stream('usage', $input, array(), $onRow, 'usage');
        } catch (cloudpe_host_error $e) {
            $message = $this->scrub($e->getMessage());
            hbm_log_error("usage: {$message}", self::LOG_TAG);
            $this->fail("CloudPe module: {$message}");
            return null;
        }
        return $this->received('usage', $subject, $result)['report'];
    }

    /**
     * Runs the host's read-only `reconcile` for `$accounts` (the sync's rows plus each client's
     * `email`) and returns its report, or null when the host could not be used (the error is in
     * lastError() and the system log).
     */
    public function reconcileAccounts(array $accounts, $timeout = 900)
    {
        $result = $this->call('reconcile', array('app' => $this->app(), 'accounts' => $accounts), array(), $timeout);
        return $result === null ? null : $result['report'];
    }

    /** The id of the connected App, or null. */
    public function serverId()
    {
        return isset($this->connection['id']) && (string) $this->connection['id'] !== '' ? (string) $this->connection['id'] : null;
    }

    /** The last error call() reported, scrubbed. */
    public function lastError()
    {
        return $this->lastError;
    }

    /**
     * The App row as the host expects it: HostBill's columns (both spellings accepted) and the
     * custom settings as `custom`, name => string, with the two known ones defaulted.
     */
    public function app()
    {
        if ($this->customError !== null) {
            throw new cloudpe_host_error($this->customError);
        }
        $c = $this->connection;
        $pick = function ($keys) use ($c) {
            foreach ($keys as $key) {
                if (isset($c[$key]) && is_scalar($c[$key]) && (string) $c[$key] !== '') {
                    return (string) $c[$key];
                }
            }
            return null;
        };
        $app = array(
            'host' => $pick(array('host', 'hostname')),
            'ip' => $pick(array('ip')),
            'username' => $pick(array('username')),
            'password' => $pick(array('password')),
            'secure' => $pick(array('secure', 'ssl')),
            'status_url' => $pick(array('status_url')),
            'field1' => $pick(array('field1')),
            'field2' => $pick(array('field2')),
        );
        $app = array_filter($app, function ($v) {
            return $v !== null;
        });
        $app['custom'] = (object) $this->settings();
        return $app;
    }

    /** The App's custom settings, with "Client field code" and "On terminate" defaulted. */
    public function settings()
    {
        $settings = $this->customSettings;
        if (!isset($settings[self::SETTING_CLIENT_FIELD]) || $settings[self::SETTING_CLIENT_FIELD] === '') {
            $settings[self::SETTING_CLIENT_FIELD] = self::DEFAULT_ID_FIELD;
        }
        if (!isset($settings[self::SETTING_ON_TERMINATE]) || $settings[self::SETTING_ON_TERMINATE] === '') {
            $settings[self::SETTING_ON_TERMINATE] = self::DEFAULT_ON_TERMINATE;
        }
        return $settings;
    }

    /**
     * The App's `custom` settings as name => trimmed string, from the array HostBill hands over, from
     * the serialized column itself, or from the column holding a JSON object (as a column rewritten
     * by a tool other than HostBill may). Missing or empty: no settings.
     *
     * @throws UnexpectedValueException when it is none of these, naming what it is
     */
    public static function parseCustom($custom)
    {
        if ($custom === null || $custom === '' || $custom === false) {
            return array();
        }
        if (is_string($custom)) {
            $text = trim($custom);
            if ($text === '') {
                return array();
            }
            $value = @unserialize($text, array('allowed_classes' => false));
            if ($value === false && $text !== serialize(false)) {
                $value = self::customFromJson($text);
            }
            $custom = $value;
        }
        if (!is_array($custom)) {
            throw new UnexpectedValueException('the App\'s custom settings (column `custom`) are a ' . gettype($custom) . ', not a list of settings: save the App again under Settings → Apps');
        }
        $settings = array();
        foreach ($custom as $name => $value) {
            if (is_array($value)) {
                // A select may come back as its choices or as ['value' => ...]: take the chosen one.
                $value = array_key_exists('value', $value) ? $value['value'] : reset($value);
            }
            if (is_scalar($value)) {
                $settings[(string) $name] = trim((string) $value);
            }
        }
        return $settings;
    }

    /**
     * The `custom` column read as JSON: an object is the settings; anything else is an error that
     * says what the column holds.
     *
     * @throws UnexpectedValueException
     */
    private static function customFromJson($text)
    {
        $first = $text[0];
        if ($first !== '{' && $first !== '[') {
            throw new UnexpectedValueException('the App\'s custom settings (column `custom`) are neither a serialized array HostBill wrote nor JSON (they start with "' . substr($text, 0, 12) . '"): save the App again under Settings → Apps');
        }
        $value = json_decode($text, true);
        if (json_last_error() !== JSON_ERROR_NONE) {
            throw new UnexpectedValueException('the App\'s custom settings (column `custom`) look like JSON but do not parse (' . json_last_error_msg() . '): save the App again under Settings → Apps');
        }
        if (!is_array($value) || ($value && array_keys($value) === range(0, count($value) - 1))) {
            throw new UnexpectedValueException('the App\'s custom settings (column `custom`) are a JSON list, not an object of settings by name: save the App again under Settings → Apps');
        }
        return $value;
    }

    /**
     * The product options the module declares (`$options`), key => name: how HostBill's stored
     * `option1`..`optionN` values are named (see cloudpe_apps::productOptions).
     *
     * @return array<string, string>
     */
    public function productOptionNames()
    {
        $names = array();
        foreach (is_array($this->options) ? $this->options : array() as $key => $option) {
            if (is_array($option) && isset($option['name']) && is_scalar($option['name'])) {
                $names[(string) $key] = (string) $option['name'];
            }
        }
        return $names;
    }

    /**
     * The account page's admin button "Link proposed CloudPe user" (`$commands`): applies the link
     * the App's last reconciliation proposed for this account, and only that one, as
     * applyProposedLinks does (checked again now, an account-log entry). False, with the reason,
     * when there is no proposal for the account or it no longer holds.
     */
    public function linkProposedUser()
    {
        return $this->guard('link proposed user', function () {
            $account = $this->account();
            $id = (string) $account['id'];
            if ($this->serverId() === null) {
                throw new cloudpe_host_error('Link proposed CloudPe user needs an App: HostBill passed none to the module');
            }
            $stored = cloudpe_links::stored($this->serverId());
            if (!isset($stored[$id])) {
                $this->fail("CloudPe module: account #{$id} has no proposed link: the App's last reconciliation (monthly) proposed none for it, or it was applied; set the client's CloudPe id by hand, or wait for the next reconciliation");
                return false;
            }
            if (!$this->applyProposedLinks(array($id => $stored[$id]['uid']))) {
                return false;
            }
            if (!isset(cloudpe_links::stored($this->serverId())[$id]) && $this->clientFieldLinked($account['client_id'], $stored[$id]['uid'])) {
                return true;
            }
            $this->fail("CloudPe module: account #{$id} was not linked (see the line above)");
            return false;
        });
    }

    /** Whether client `$clientId`'s CloudPe id field now holds `$uid` (read from HostBill now). */
    private function clientFieldLinked($clientId, $uid)
    {
        $client = (new ApiWrapper())->getClientDetails(array('id' => (string) $clientId));
        $code = $this->idFieldCode();
        return is_array($client) && isset($client['client'][$code]) && trim((string) $client['client'][$code]) === (string) $uid;
    }

    /**
     * Admin action "Apply proposed links": links the accounts the App's last reconciliation
     * proposed (stored by it, see cloudpe_links), each checked again now, to their CloudPe user
     * by setting their client's CloudPe id field, with an entry in the account's log each. Only a
     * logged-in staff member may run it; HostBill's cron never does.
     *
     * @param array|null $listed account id => uid, as the admin saw them listed (null: every
     *        stored proposal of the App); a pair not listed so is skipped, never applied
     * @return bool whether the action ran (each skipped proposal is told with its reason)
     */
    public function applyProposedLinks($listed = null)
    {
        return $this->guard('apply proposed links', function () use ($listed) {
            if ($this->serverId() === null) {
                throw new cloudpe_host_error('Apply proposed links needs an App: HostBill passed none to the module');
            }
            try {
                $result = cloudpe_links::apply($this, $listed);
            } catch (cloudpe_apps_error $e) {
                $this->fail('CloudPe module: Apply proposed links: ' . $this->scrub($e->getMessage()));
                return false;
            }
            foreach ($result['lines'] as $line) {
                $this->addInfo($this->scrub($line));
            }
            return true;
        });
    }

    /** Code of the client custom field holding the CloudPe user id. */
    public function idFieldCode()
    {
        $settings = $this->settings();
        return $settings[self::SETTING_CLIENT_FIELD];
    }

    /** The client's CloudPe id custom field (read once per client), keyed by its code. */
    public function clientFields($clientId)
    {
        $key = (string) $clientId;
        if (!isset($this->clientFields[$key])) {
            $this->readClient($clientId, false);
        }
        $value = $this->clientFields[$key];
        return $value === '' ? array() : array($this->idFieldCode() => $value);
    }

    /** The client's email address in HostBill (getClientDetails' `client.email`), or ''. */
    public function clientEmail($clientId)
    {
        $key = (string) $clientId;
        if (!isset($this->clientEmails[$key])) {
            $this->readClient($clientId, true);
        }
        return $this->clientEmails[$key];
    }

    /**
     * Reads the client row (getClientDetails' `client`) and keeps of it only its CloudPe id field
     * and, when `$email`, its email ('' when HostBill has no such client or value).
     */
    protected function readClient($clientId, $email)
    {
        $key = (string) $clientId;
        $api = new ApiWrapper();
        $reply = $api->getClientDetails(array('id' => $clientId));
        $client = isset($reply['client']) && is_array($reply['client']) ? $reply['client'] : array();
        if (!is_array($reply) || empty($reply['success']) || !isset($reply['client']) || !is_array($reply['client'])) {
            $this->clientErrors[$key] = is_array($reply) && isset($reply['error'])
                ? (is_array($reply['error']) ? implode('; ', array_map('strval', $reply['error'])) : (string) $reply['error'])
                : 'no client in its reply';
        }
        $code = $this->idFieldCode();
        $this->clientFields[$key] = isset($client[$code]) && is_scalar($client[$code]) ? trim((string) $client[$code]) : '';
        if ($email) {
            $this->clientEmails[$key] = isset($client['email']) && is_scalar($client['email']) ? trim((string) $client['email']) : '';
        }
    }

    /**
     * "client #N, which HostBill does not have (why)" when HostBill gave no row for client
     * `$clientId` (read by clientFields), or null when it has one: a missing client is said as
     * such, not as a client without a CloudPe id.
     */
    public function missingClient($clientId)
    {
        $key = (string) $clientId;
        if (!isset($this->clientErrors[$key])) {
            return null;
        }
        return "client #{$key}, which HostBill does not have (getClientDetails: {$this->clientErrors[$key]})";
    }

    /** Uses `$queue` for failed actions instead of the one on HostBill's database (tests). */
    public function useRetries(cloudpe_retries $queue)
    {
        $this->retries = $queue;
    }

    /** The retry queue. */
    public function retries()
    {
        if ($this->retries === null) {
            $this->retries = new cloudpe_retries();
        }
        return $this->retries;
    }

    /** The account log and staff notices, scrubbed with this App's secrets. */
    public function audit()
    {
        return new cloudpe_audit(array($this, 'scrub'));
    }

    /** Whether the App's "Call log" setting is on. */
    public function callLogOn()
    {
        $settings = $this->settings();
        return isset($settings[self::SETTING_CALL_LOG]) && strtolower($settings[self::SETTING_CALL_LOG]) === 'on';
    }

    /**
     * What the module is and may do with this App, as one line for the App page, from the host's
     * `info` (`info.component.signature`, `info.permissions`), e.g. "Module CloudPe 0.1.0 (signed
     * by key ab12...): may reach only https://api.example:443 (the Host URL's origin); reads Host
     * URL, App Id, Session (secret), ...; limits: memory 128 MiB, deadline 108 s, responses 64 MiB,
     * 16 connections". The origin is the one the host read from the App (`endpoint` of the
     * connection test's report): the host parses the Host URL, this class never does. Null when
     * the host could not tell (logged, never an error of the action).
     *
     * @param string|null $endpoint the `endpoint` of the connection test's report
     * @param string|null $capabilities what the capability probe found, as one clause (cloudpe_lifecycle::capabilitySummary)
     * @return string|null
     */
    public function permissionsSummary($endpoint = null, $capabilities = null)
    {
        try {
            $result = $this->host()->run('info', array());
        } catch (cloudpe_host_error $e) {
            hbm_log_error('info: ' . $this->scrub($e->getMessage()), self::LOG_TAG);
            return null;
        }
        $report = $result['report'];
        if ($result['exit'] !== cloudpe_host::EXIT_SUCCESS || !isset($report['info']) || !is_array($report['info'])) {
            hbm_log_error('info: ' . $this->errorText($report), self::LOG_TAG);
            return null;
        }
        return $this->scrub(self::describeInfo($report['info'], $endpoint, $capabilities));
    }

    /**
     * The permissions line for the host's `info` object and the origin the host allows.
     *
     * @param array $info the report's `info`
     * @param string|null $endpoint the origin (`scheme://host:port`) as the host's report names it
     * @param string|null $capabilities the capability probe's clause, e.g. "on CloudPe the token may: group list"
     * @return string
     */
    public static function describeInfo(array $info, $endpoint, $capabilities = null)
    {
        $labels = array();
        foreach (isset($info['app_fields']) && is_array($info['app_fields']) ? $info['app_fields'] : array() as $field) {
            if (isset($field['field'], $field['label'])) {
                $labels[(string) $field['field']] = (string) $field['label'];
            }
        }
        $label = function ($field) use ($labels) {
            return isset($labels[$field]) ? $labels[$field] : $field;
        };
        $name = trim((isset($info['name']) ? $info['name'] : 'module') . ' ' . (isset($info['version']) ? $info['version'] : ''));
        $signature = isset($info['component']['signature']) && is_array($info['component']['signature']) ? $info['component']['signature'] : array();
        if (!empty($signature['verified']) && isset($signature['key_id'])) {
            $trust = "signed by key {$signature['key_id']}";
        } else {
            $trust = 'NOT verified' . (isset($signature['why']) ? ': ' . $signature['why'] : '');
        }
        $permissions = isset($info['permissions']) && is_array($info['permissions']) ? $info['permissions'] : array();

        $field = isset($info['endpoint_field']) ? (string) $info['endpoint_field'] : 'status_url';
        $reach = is_string($endpoint) && $endpoint !== ''
            ? "may reach only {$endpoint} (the {$label($field)}'s origin)"
            : "may reach only the origin of the {$label($field)}";

        $secret = isset($permissions['secret']) && is_array($permissions['secret']) ? array_map('strval', $permissions['secret']) : array();
        $reads = array();
        foreach (isset($permissions['reads']) && is_array($permissions['reads']) ? $permissions['reads'] : array() as $field) {
            $reads[] = $label((string) $field) . (in_array((string) $field, $secret, true) ? ' (secret)' : '');
        }
        $limits = isset($permissions['limits']) && is_array($permissions['limits']) ? $permissions['limits'] : array();
        $parts = array();
        foreach (array('memory' => 'memory %s', 'deadline' => 'deadline %s', 'response' => 'responses %s', 'connections' => '%s connections') as $key => $format) {
            if (isset($limits[$key]) && is_scalar($limits[$key])) {
                $parts[] = sprintf($format, $limits[$key]);
            }
        }
        $line = "Module {$name} ({$trust}): {$reach}";
        if ($reads) {
            $line .= '; reads ' . implode(', ', $reads);
        }
        if ($parts) {
            $line .= '; limits: ' . implode(', ', $parts);
        }
        if (is_string($capabilities) && $capabilities !== '') {
            $line .= "; {$capabilities}";
        }
        if (!empty($info['component']['previous'])) {
            $previous = $info['component']['previous'];
            $version = isset($previous['metadata']['version']) && is_scalar($previous['metadata']['version']) ? ' (' . $previous['metadata']['version'] . ')' : '';
            $line .= "; the previous component{$version} is kept for a rollback";
        }
        return $line;
    }

    /** The host for an operation: injected, built by the factory, or the bundle's. */
    public function host($timeout = self::OPERATION_TIMEOUT)
    {
        if ($this->host !== null) {
            return $this->host;
        }
        if ($this->hostFactory !== null) {
            return call_user_func($this->hostFactory, $this->connection, $timeout, $this->secrets());
        }
        $dir = self::bundleDir();
        return new cloudpe_host($dir . '/bin/hostbill-module-host', $dir . '/cloudpe.wasm', $timeout, $this->secrets(), self::cacheDir(), array(), self::keysDir());
    }

    /**
     * The public keys a component must be signed with (passed as --trusted-keys): the bundle's
     * `keys` folder, which ships the vendor's key as keys/vendor.pub.
     */
    public static function keysDir()
    {
        return self::bundleDir() . '/keys';
    }

    /** The module's folder (includes/modules/Hosting/cloudpe). */
    public static function bundleDir()
    {
        return __DIR__;
    }

    /**
     * The compiled-component cache: a folder in the module's own tree, never /tmp. The host
     * creates it 0700, keeps its key beside it (cache.key), refuses it if another user could write
     * it, and compiles in memory when it cannot use it.
     */
    public static function cacheDir()
    {
        return self::bundleDir() . '/cache';
    }

    /**
     * Why the compile cache `$dir` (and its key, `$dir.key`) cannot serve the user PHP runs as,
     * or null. The host uses the cache only if the folder and key belong to the user running it;
     * when the cron runs as root and the web server as another user, whoever ran first owns them
     * and the other one compiles the component on every action (slower, never unsafe). Null too
     * when nothing exists yet or the owner cannot be told (no posix extension).
     *
     * @param int|null $euid the effective user id (default posix_geteuid())
     * @return string|null
     */
    public static function cacheOwnerWarning($dir, $euid = null)
    {
        if ($euid === null) {
            if (!function_exists('posix_geteuid')) {
                return null;
            }
            $euid = posix_geteuid();
        }
        foreach (array($dir, $dir . '.key') as $path) {
            if (!file_exists($path)) {
                continue;
            }
            $owner = @fileowner($path);
            if ($owner !== false && (int) $owner !== (int) $euid) {
                $name = function ($uid) {
                    $entry = function_exists('posix_getpwuid') ? @posix_getpwuid($uid) : false;
                    return is_array($entry) && isset($entry['name']) ? "{$entry['name']} (uid {$uid})" : "uid {$uid}";
                };
                return "the compiled-component cache {$path} belongs to " . $name((int) $owner) . ', not to ' . $name((int) $euid)
                    . ', the user this PHP runs as: the host does not use a cache another user owns, so every action here compiles the component again (slower). '
                    . 'Run HostBill\'s cron as the web server\'s user, or give the cache and its .key to that user (README, INSTALL step 7, "Compile cache")';
            }
        }
        return null;
    }

    /** Files a 1.0.x install leaves behind that collide with this version. */
    public static function leftoverFiles($dir = null)
    {
        $dir = $dir === null ? self::bundleDir() : (string) $dir;
        $found = array();
        foreach (array('admin/class.cloudpe_controller.php', 'admin/default.tpl') as $file) {
            if (file_exists($dir . '/' . $file)) {
                $found[] = $file;
            }
        }
        return $found;
    }

    /** What the admin must do about them. */
    public static function leftoverMessage()
    {
        return 'CloudPe module: files of version 1.0.x are still installed: delete includes/modules/Hosting/cloudpe/admin/class.cloudpe_controller.php and admin/default.tpl (the old controller declares the same class as the new cron controller, and PHP stops with "Cannot declare class cloudpe_controller" when both load)';
    }

    /** Values that must never reach a log or message. */
    public function secrets()
    {
        $secrets = array();
        foreach (array('field2', 'password') as $key) {
            if (isset($this->connection[$key]) && is_scalar($this->connection[$key]) && (string) $this->connection[$key] !== '') {
                $secrets[] = (string) $this->connection[$key];
            }
        }
        return $secrets;
    }

    /** `$text` without secrets. */
    public function scrub($text)
    {
        return cloudpe_host::scrubText((string) $text, $this->secrets());
    }

    /** Registers the daily task and reports leftovers of 1.0.x; never fails the (un)install. */
    protected function prepareCron($why)
    {
        $apps = new cloudpe_apps();
        try {
            hbm_log_system("{$why}: " . $apps->ensureDailyTask(), self::LOG_TAG);
            foreach ($apps->ensureOtherTasks() as $done) {
                hbm_log_system("{$why}: {$done}", self::LOG_TAG);
            }
            foreach ($apps->ensureSchedules() as $done) {
                hbm_log_system("{$why}: {$done}", self::LOG_TAG);
            }
            hbm_log_system("{$why}: " . $apps->ensureModuleFlags(), self::LOG_TAG);
        } catch (cloudpe_apps_error $e) {
            hbm_log_error("{$why}: " . $e->getMessage() . '; the daily sync, the retries and the reconciliation will not run until their tasks exist (see README, INSTALL step 6)', self::LOG_TAG);
        }
        try {
            $this->retries()->createTables();
        } catch (\Throwable $e) {
            hbm_log_error("{$why}: could not create the module's tables " . cloudpe_retries::TABLE . ' and ' . cloudpe_retries::OUTAGES . ': ' . $this->scrub($e->getMessage()) . '; failed actions cannot be queued for a retry until they exist (deactivate and activate the module, or upgrade it again)', self::LOG_TAG);
        }
        try {
            cloudpe_links::createTables();
        } catch (\Throwable $e) {
            hbm_log_error("{$why}: could not create the module's table " . cloudpe_links::TABLE . ': ' . $this->scrub($e->getMessage()) . '; the reconciliation cannot keep its proposed links for the admin until it exists (deactivate and activate the module, or upgrade it again)', self::LOG_TAG);
        }
        try {
            cloudpe_usage::createTables();
        } catch (\Throwable $e) {
            hbm_log_error("{$why}: could not create the module's tables " . cloudpe_usage::LEDGER . ' and ' . cloudpe_usage::CURSORS . ': ' . $this->scrub($e->getMessage()) . '; the usage import cannot run until they exist (deactivate and activate the module, or upgrade it again)', self::LOG_TAG);
        }
        if (self::leftoverFiles()) {
            hbm_log_error(self::leftoverMessage(), self::LOG_TAG);
        }
        return true;
    }

    /**
     * Runs an account operation and translates its report. A failure goes to the account's log;
     * one that HostBill's automation ran and that may pass (cloudpe_retries::isTransient) is
     * queued for the cron to retry. A success clears the account's queued retry.
     */
    protected function accountAction($operation, $request = null, $onSuccess = null)
    {
        $account = $this->account();
        $replayed = cloudpe_retries::takeReplayed($account['id'], $operation);
        if ($replayed !== null) {
            // HostBill's own action, called by the cron's retry that has just done this on CloudPe.
            $this->addInfo($this->scrub("CloudPe: {$operation} done by the CloudPe cron's retry (attempt {$replayed['attempt']}): {$replayed['message']}"));
            return $onSuccess === null || !isset($replayed['report']) ? true : (bool) call_user_func($onSuccess, $replayed['report'], $account);
        }
        $request = $request === null ? array('app' => $this->app(), 'account' => $account) : call_user_func($request, $account);
        $result = $this->call($operation, $request);
        if ($result === null) {
            $this->afterFailure($operation, $account, array('error' => array('kind' => 'host', 'message' => (string) $this->lastError)));
            return false;
        }
        if ($result['exit'] !== cloudpe_host::EXIT_SUCCESS) {
            $this->showWarnings($result['report']);
            $missing = $this->missingClient($account['client_id']);
            if ($missing !== null && isset($result['report']['error']['kind']) && $result['report']['error']['kind'] === 'configuration') {
                $result['report']['error']['message'] = "CloudPe module: account #{$account['id']} belongs to {$missing}: the client is missing, so there is no CloudPe user id to read; give the account an existing client";
            }
            $this->fail($this->failureText($operation, $result['report']));
            $this->afterFailure($operation, $account, $result['report']);
            return false;
        }
        $message = isset($result['report']['outcome']['message']) ? $this->reportText($result['report']['outcome']['message']) : "{$operation}: done";
        $this->addInfo($this->scrub($message));
        $this->showWarnings($result['report']);
        $this->afterSuccess($operation, $account);
        return $onSuccess === null ? true : (bool) call_user_func($onSuccess, $result['report'], $account);
    }

    /** errorText, with what to do when the App's component is older than `$operation` (`unsupported`). */
    protected function failureText($operation, array $report)
    {
        if (isset($report['error']['kind'], $report['error']['message']) && $report['error']['kind'] === 'unsupported') {
            return cloudpe_lifecycle::unsupportedMessage($operation, $this->reportText($report['error']['message']));
        }
        return $this->errorText($report);
    }

    /** The lifecycle operations' HostBill side (Create's link, ChangePackage, groups, capabilities). */
    protected function lifecycle()
    {
        return new cloudpe_lifecycle($this);
    }

    /**
     * The product's module options as the component reads them, name => trimmed value, empty ones
     * left out: `$this->options[...]['value']`, which HostBill fills with the product's (for
     * ChangePackage, the new package's) configuration before the action.
     */
    public function productOptions()
    {
        $values = array();
        foreach (is_array($this->options) ? $this->options : array() as $key => $option) {
            if (!is_array($option) || !isset($option['value']) || !is_scalar($option['value']) || is_bool($option['value'])) {
                continue;
            }
            $value = trim((string) $option['value']);
            if ($value !== '') {
                $values[isset($option['name']) && is_string($option['name']) && $option['name'] !== '' ? $option['name'] : (string) $key] = $value;
            }
        }
        return $values;
    }

    /**
     * The module options HostBill stores for this action's account's product (by name), for an
     * action HostBill did not load them for: the cron's retry of a Create runs the module outside
     * HostBill's flow, with the account row only (its `product_id`). Empty when the row names no
     * product or the options cannot be read (logged).
     */
    public function storedProductOptions()
    {
        $product = is_array($this->account_details) && isset($this->account_details['product_id']) && is_scalar($this->account_details['product_id']) ? (string) $this->account_details['product_id'] : '';
        if ($product === '') {
            return array();
        }
        try {
            $all = (new cloudpe_apps())->productOptions($this->productOptionNames());
        } catch (cloudpe_apps_error $e) {
            $this->log('warn', "product #{$product}'s module options could not be read, so Create runs without them (no CloudPe group): " . $e->getMessage());
            return array();
        }
        return isset($all[$product]) ? array_filter($all[$product], function ($value) {
            return is_string($value) && $value !== '';
        }) : array();
    }

    /** Sets one of the account's CloudPe details (HostBill saves them with the account after Create). */
    public function setDetail($key, $value)
    {
        if (isset($this->details[$key])) {
            $this->details[$key]['value'] = (string) $value;
        }
    }

    /** Fills the CloudPe details of the facts a report names, leaving the others as they are. */
    public function showReportFacts($facts)
    {
        foreach (self::FACT_DETAILS as $fact => $key) {
            if (is_array($facts) && isset($facts[$fact]) && is_scalar($facts[$fact])) {
                $this->details[$key]['value'] = $this->reportText((string) $facts[$fact]);
            }
        }
    }

    /** Remembers that client `$clientId`'s CloudPe id field now holds `$value` (written by this run). */
    public function rememberClientField($clientId, $value)
    {
        $this->clientFields[(string) $clientId] = trim((string) $value);
    }

    /** The client's CloudPe id field as HostBill holds it now (read again, not from this run's cache). */
    public function freshClientField($clientId)
    {
        unset($this->clientFields[(string) $clientId]);
        $fields = $this->clientFields($clientId);
        return isset($fields[$this->idFieldCode()]) ? $fields[$this->idFieldCode()] : '';
    }

    /** addError with `$message` (scrubbed), remembered for lastError(). */
    public function failWith($message)
    {
        $this->fail($message);
    }

    /**
     * Runs `$operation` again for the cron's retry queue, on the account handed over with setAccount(),
     * within `$timeout` seconds. Nothing is queued and nothing is shown to an admin; with `$quiet`
     * (its App's outage is already in the system log) the run's log lines are left out too: the
     * retry's row in the account's log keeps its error.
     *
     * @return array{ok: bool, kind: string, message: string, transient: bool, facts: array, report?: array}
     */
    public function retry($operation, $timeout = cloudpe_retries::RETRY_TIMEOUT, $quiet = false)
    {
        $this->quiet = (bool) $quiet;
        try {
            $account = $this->account();
            $request = $operation === 'create' ? $this->lifecycle()->request($account) : array('app' => $this->app(), 'account' => $account);
            $result = $this->call($operation, $request, array(), $timeout);
        } catch (cloudpe_host_error $e) {
            $this->quiet = false;
            return array('ok' => false, 'kind' => 'configuration', 'message' => $this->scrub($e->getMessage()), 'transient' => false, 'facts' => array());
        }
        $this->quiet = false;
        if ($result === null) {
            return array('ok' => false, 'kind' => 'host', 'message' => (string) $this->lastError, 'transient' => false, 'facts' => array());
        }
        $report = $result['report'];
        if ($result['exit'] !== cloudpe_host::EXIT_SUCCESS) {
            $kind = isset($report['error']['kind']) ? (string) $report['error']['kind'] : 'unknown';
            return array('ok' => false, 'kind' => $kind, 'message' => $this->errorText($report), 'transient' => cloudpe_retries::isTransient($report), 'facts' => array());
        }
        $facts = isset($report['outcome']['facts']) && is_array($report['outcome']['facts']) ? $report['outcome']['facts'] : array();
        $message = isset($report['outcome']['message']) ? $this->reportText($report['outcome']['message']) : "{$operation}: done";
        // What HostBill's own action, run by the retry next, stores (Create: the link): the
        // members it reads, not the whole report.
        $kept = array_intersect_key($report, array('link' => 1, 'outcome' => 1));
        return array('ok' => true, 'kind' => '', 'message' => $message, 'transient' => false, 'facts' => $facts, 'report' => $kept);
    }

    /**
     * A failed action: a row in the account's log (who, the error, and whether it is retried),
     * and the retry queue when HostBill's automation ran it and the failure may pass.
     */
    protected function afterFailure($operation, array $account, array $report)
    {
        $kind = isset($report['error']['kind']) ? (string) $report['error']['kind'] : 'unknown';
        $message = (string) $this->lastError;
        $actor = cloudpe_audit::actor();
        $retry = 'not retried (run by ' . $actor['login'] . ')';
        $queued = false;
        if (!$actor['manual'] && in_array($operation, cloudpe_retries::OPERATIONS, true)) {
            if (!cloudpe_retries::isTransient($report)) {
                $retry = "not retried: {$kind} is not a failure that passes by itself";
            } else {
                $queued = true;
                try {
                    $row = $this->retries()->queue($account['id'], (string) $this->serverId(), $operation, $kind, $message);
                    $retry = $row['state'] === 'given-up'
                        ? "failed {$row['failures']} times: retries stopped"
                        : "queued: the CloudPe cron retries it after {$row['next_at']} UTC (failure {$row['failures']} of " . cloudpe_retries::MAX_FAILURES . ')';
                    $this->addError("CloudPe module: {$retry}");
                } catch (\Throwable $e) {
                    $retry = 'NOT queued for a retry: ' . $this->scrub($e->getMessage());
                    $this->log('error', "{$operation} of account #{$account['id']}: {$retry}");
                }
            }
        }
        if (!$queued) {
            $this->supersede($operation, $account, "{$actor['login']}'s {$operation} (failed)");
        }
        $this->audit()->account($account['id'], "CloudPe: {$operation} failed; {$retry}", 'CloudPe' . str_replace('-', '', ucwords($operation, '-')), false, array(
            array('name' => 'status', 'from' => $account['status'], 'to' => $account['status']),
            array('name' => 'error kind', 'from' => '', 'to' => $kind),
        ), $message, $actor);
    }

    /**
     * A later action on the account (`$by`) that was not queued itself: the account's queued
     * retry, if it had one, is no longer what anyone wants; it is dropped, in the account's log.
     */
    protected function supersede($operation, array $account, $by)
    {
        $this->dropQueued($operation, $account, "dropped: superseded by {$by}");
    }

    /** A successful action clears the account's queued retry, if it had one (logged there). */
    protected function afterSuccess($operation, array $account)
    {
        if ($this->serverId() !== null) {
            $this->retries()->recovered($this->serverId(), $this);
        }
        $this->dropQueued($operation, $account, "cleared: {$operation} succeeded");
    }

    /** Removes the account's queued retry, if it had one, saying `$why` in the account's log. */
    private function dropQueued($operation, array $account, $why)
    {
        try {
            $row = $this->retries()->clear($account['id']);
        } catch (\Throwable $e) {
            $this->log('error', "{$operation} of account #{$account['id']}: could not read the retry queue: " . $this->scrub($e->getMessage()));
            return;
        }
        if ($row !== null) {
            $this->audit()->account($account['id'], "CloudPe: queued {$row['operation']} ({$row['state']}, {$row['failures']} failures) {$why}", 'CloudPeRetry', true);
        }
    }

    /**
     * Runs `$action` so that nothing escapes it: a Throwable becomes addError, a system-log line
     * and `$failure`.
     */
    protected function guard($what, $action, $failure = false)
    {
        try {
            return call_user_func($action);
        } catch (cloudpe_host_error $e) {
            $message = $this->scrub($e->getMessage());
            hbm_log_error("{$what}: {$message}", self::LOG_TAG);
            $this->fail("CloudPe module: {$message}");
        } catch (\Throwable $e) {
            $message = $this->scrub(get_class($e) . ': ' . $e->getMessage());
            hbm_log_error("{$what} stopped by an unexpected error: {$message}", self::LOG_TAG);
            $this->fail("CloudPe module: {$what} stopped by an unexpected error: {$message}");
        }
        return $failure;
    }

    /** addError, remembered for lastError(). */
    protected function fail($message)
    {
        $this->lastError = $this->scrub($message);
        $this->addError($this->lastError);
    }

    /**
     * Runs one host operation; logs its records. Returns null (with the error added and logged)
     * when the host itself could not be used.
     *
     * @return array|null
     */
    protected function call($operation, array $request, array $options = array(), $timeout = self::OPERATION_TIMEOUT)
    {
        try {
            $result = $this->host($timeout)->run($operation, $request, $options);
        } catch (cloudpe_host_error $e) {
            $message = $this->scrub($e->getMessage());
            hbm_log_error("{$operation}: {$message}", self::LOG_TAG);
            $this->fail("CloudPe module: {$message}");
            return null;
        }
        return $this->received($operation, self::subject($operation, $request), $result);
    }

    /** What call() does with the host's result: advice, log records, the call log, the meter line. */
    protected function received($operation, $subject, array $result)
    {
        if (isset($result['advice']) && $result['advice'] !== null && isset($result['report']['error']) && is_array($result['report']['error'])) {
            $result['report']['error']['advice'] = $result['advice'];
        }
        $this->logRecords($operation, $result['report']);
        $this->logCalls($result['report']);
        if ($result['exit'] === cloudpe_host::EXIT_SUCCESS && !empty($result['report']['ok'])) {
            $meter = cloudpe_host::meterNote($result['report']);
            $this->log('info', $subject . ': ok' . ($meter !== null ? "; {$meter}" : ''));
        }
        return $result;
    }

    /** With "Call log" on, each of the report's `calls` as a system-log line; off: nothing. */
    protected function logCalls(array $report)
    {
        if (!$this->callLogOn() || !isset($report['calls']) || !is_array($report['calls'])) {
            return;
        }
        $audit = $this->audit();
        foreach ($report['calls'] as $call) {
            if (is_array($call)) {
                $audit->call($call);
            }
        }
        if (isset($report['calls_dropped']) && (int) $report['calls_dropped'] > 0) {
            hbm_log_system(cloudpe_audit::CALL_PREFIX . (int) $report['calls_dropped'] . ' more calls of this run are not logged (the report keeps at most ' . count($report['calls']) . ')', self::LOG_TAG);
        }
    }

    /** Shows the report's warnings to the admin, beside the action's own message. */
    protected function showWarnings(array $report)
    {
        foreach (cloudpe_host::warnings($report) as $warning) {
            $this->addInfo($this->scrub("Warning: {$warning}"));
        }
    }

    /**
     * The module's log records, to HostBill's system log (debug records are left out), and the
     * report's warnings.
     */
    protected function logRecords($operation, array $report)
    {
        foreach (cloudpe_host::warnings($report) as $warning) {
            $this->log('warn', "{$operation}: warning: {$warning}");
        }
        foreach (isset($report['logs']) && is_array($report['logs']) ? $report['logs'] : array() as $record) {
            if (isset($record['level'], $record['message']) && $record['level'] !== 'debug') {
                $this->log($record['level'], $this->reportText($record['message']));
            }
        }
        if (empty($report['ok']) && isset($report['error']['message'])) {
            $kind = isset($report['error']['kind']) ? $report['error']['kind'] : 'error';
            $notes = array_filter(array(cloudpe_host::limitNote($report), cloudpe_host::meterNote($report)));
            $this->log('error', "{$operation} failed ({$kind}): " . $this->reportText($report['error']['message']) . ($notes ? ' [' . implode('; ', $notes) . ']' : ''));
        }
    }

    /** What an operation's log line is about: "suspend of account #101", "sync of 3 accounts". */
    protected static function subject($operation, array $request)
    {
        if (isset($request['account']['id']) && is_scalar($request['account']['id'])) {
            return "{$operation} of account #{$request['account']['id']}";
        }
        if (isset($request['accounts']) && is_array($request['accounts'])) {
            $count = count($request['accounts']);
            return "{$operation} of {$count} account" . ($count === 1 ? '' : 's');
        }
        return $operation;
    }

    /**
     * A text of a host report (CloudPe's emails, logins, groups and error excerpts, the module's
     * messages) as the module hands it on: scrubbed, then HTML-escaped once, here, because every
     * place it goes is an admin page (see class.cloudpe_text.php).
     */
    public function reportText($text)
    {
        return cloudpe_text::html($this->scrub(is_scalar($text) ? (string) $text : ''));
    }

    /** One line to the system log, scrubbed. */
    protected function log($level, $message)
    {
        if ($this->quiet) {
            return;
        }
        $message = $this->scrub($message);
        if ($level === 'error' || $level === 'warn') {
            hbm_log_error($message, self::LOG_TAG);
        } else {
            hbm_log_system($message, self::LOG_TAG);
        }
    }

    /** The current account, with its client's CloudPe id field. */
    protected function account()
    {
        $details = is_array($this->account_details) ? $this->account_details : array();
        if (!isset($details['id']) || (string) $details['id'] === '') {
            throw new cloudpe_host_error('HostBill passed no account to the action (account_details has no id)');
        }
        $clientId = isset($details['client_id']) ? $details['client_id'] : '0';
        return array(
            'id' => $details['id'],
            'client_id' => $clientId,
            'status' => isset($details['status']) && (string) $details['status'] !== '' ? (string) $details['status'] : 'Pending',
            'custom_fields' => (object) $this->clientFields($clientId),
        );
    }

    /**
     * The admin-facing text of a failed report or decision, with what to do when the component's
     * signature was refused (`error.advice`, see cloudpe_host::advice).
     */
    public function errorText(array $report)
    {
        if (isset($report['error']['message'])) {
            if (isset($report['error']['advice']) && is_string($report['error']['advice'])) {
                return 'CloudPe module: ' . rtrim($this->reportText($report['error']['message']), '. ') . '. ' . $this->scrub($report['error']['advice']);
            }
            return $this->reportText($report['error']['message']);
        }
        return 'CloudPe module: the operation failed without a message';
    }
}

require_once __DIR__ . '/class.cloudpe_sync.php';
require_once __DIR__ . '/class.cloudpe_retries.php';
require_once __DIR__ . '/class.cloudpe_reconcile.php';
require_once __DIR__ . '/class.cloudpe_products.php';
require_once __DIR__ . '/class.cloudpe_links.php';
require_once __DIR__ . '/class.cloudpe_usage.php';
require_once __DIR__ . '/class.cloudpe_usage_run.php';
require_once __DIR__ . '/class.cloudpe_usage_rows.php';
require_once __DIR__ . '/class.cloudpe_usage_ledger.php';
require_once __DIR__ . '/class.cloudpe_usage_summary.php';
