<?php

require_once __DIR__ . '/class.cloudpe_host.php';

/**
 * CloudPe (Virtuozzo Application Platform) provisioning module for HostBill.
 *
 * A thin shell: every action runs one operation of the sandboxed CloudPe component through
 * `hostbill-module-host` (see class.cloudpe_host.php) and translates its report into HostBill's
 * terms (true/false, addError/addInfo, the system log).
 */
class cloudpe extends HostingModule
{
    /** Tag of every system-log line. */
    const LOG_TAG = 'CloudPe Module';
    /** Default code of the client custom field holding the CloudPe user id. */
    const DEFAULT_ID_FIELD = 'cloudpeid';
    /** Seconds an account operation may take before the host is stopped. */
    const OPERATION_TIMEOUT = 120;

    protected $modname = 'CloudPe';
    protected $version = '2.0.0';
    protected $description = 'Suspends, unsuspends and syncs CloudPe (Virtuozzo Application Platform) users, through a sandboxed WebAssembly module.';
    protected $options = array();
    protected $details = array();
    protected $serverFields = array(
        'hostname' => false,
        'ip' => false,
        'maxaccounts' => false,
        'status_url' => true,
        'username' => false,
        'password' => false,
        'field1' => true,
        'field2' => true,
        'field3' => true,
        'field4' => true,
        'field5' => true,
        'secure' => false,
    );
    protected $serverFieldsDescription = array(
        'status_url' => 'Host URL',
        'field1' => 'App Id',
        'field2' => 'Session',
        'field3' => 'Client field code (default: cloudpeid)',
        'field4' => 'On terminate: none (default) or deactivate',
        'field5' => 'Component file (default: cloudpe.wasm of this module)',
    );

    /** @var array the App row, as passed to connect() */
    protected $connection = array();
    /** @var cloudpe_host|null injected host (tests); built from the App otherwise */
    protected $host = null;
    /** @var array client id => custom fields, read once per client */
    protected $clientFields = array();

    /** Called by HostBill with the App (server) row before any action. */
    public function connect($connect)
    {
        $this->connection = is_array($connect) ? $connect : array();
        $this->host = null;
    }

    /** Uses `$host` instead of the bundled one (tests, custom installs). */
    public function useHost(cloudpe_host $host)
    {
        $this->host = $host;
    }

    public function testConnection()
    {
        $result = $this->call('test-connection', array('app' => $this->app()));
        if ($result === null) {
            return false;
        }
        $checks = array();
        foreach (isset($result['report']['checks']) ? $result['report']['checks'] : array() as $check) {
            $checks[] = $check['name'] . ': ' . ($check['passed'] ? 'passed' : 'FAILED') . ' (' . $check['detail'] . ')';
        }
        if ($result['exit'] !== cloudpe_host::EXIT_SUCCESS) {
            $this->addError($this->errorText($result['report']));
            return false;
        }
        $this->addInfo('CloudPe connection OK: ' . implode('; ', $checks));
        return true;
    }

    public function Create()
    {
        return $this->accountAction('create');
    }

    public function Suspend()
    {
        return $this->accountAction('suspend');
    }

    public function Unsuspend()
    {
        return $this->accountAction('unsuspend');
    }

    public function Terminate()
    {
        return $this->accountAction('terminate');
    }

    /**
     * Reads this account's CloudPe status. Records a changed status with editAccountDetails (never
     * accountSuspend/accountUnsuspend, which would call Suspend() again) and returns
     * ['status' => ...]; returns false when CloudPe could not tell.
     */
    public function getSynchInfo()
    {
        $account = $this->account();
        $result = $this->call('sync', array('app' => $this->app(), 'accounts' => array($account)));
        if ($result === null) {
            return false;
        }
        if ($result['exit'] !== cloudpe_host::EXIT_SUCCESS || empty($result['report']['decisions'])) {
            $this->addError($this->errorText($result['report']));
            return false;
        }
        $decision = $result['report']['decisions'][0];
        switch ($decision['decision']) {
            case 'change':
                $api = new ApiWrapper();
                $api->editAccountDetails(array('id' => $account['id'], 'status' => $decision['to']));
                $this->log('info', "account #{$account['id']}: status {$decision['from']} -> {$decision['to']} (from CloudPe)");
                return array('status' => $decision['to']);
            case 'unchanged':
            case 'skipped':
                return array('status' => $account['status']);
            default:
                $this->addError($this->errorText($decision));
                return false;
        }
    }

    /**
     * Runs one host sync for `$accounts` (rows as the host expects them) and returns its report,
     * or null when the host could not be used (the error is logged).
     */
    public function syncAccounts(array $accounts, array $options = array(), $timeout = 900)
    {
        $result = $this->call('sync', array('app' => $this->app(), 'accounts' => $accounts), $options, $timeout);
        return $result === null ? null : $result['report'];
    }

    /** The id of the connected App, or null. */
    public function serverId()
    {
        return isset($this->connection['id']) && $this->connection['id'] !== '' ? $this->connection['id'] : null;
    }

    /** Runs an account operation and translates its report. */
    protected function accountAction($operation)
    {
        $result = $this->call($operation, array('app' => $this->app(), 'account' => $this->account()));
        if ($result === null) {
            return false;
        }
        if ($result['exit'] !== cloudpe_host::EXIT_SUCCESS) {
            $this->addError($this->errorText($result['report']));
            return false;
        }
        $this->addInfo($this->scrub($result['report']['outcome']['message']));
        return true;
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
            $this->addError("CloudPe module: {$message}");
            return null;
        }
        $this->logRecords($operation, $result['report']);
        return $result;
    }

    /** The module's log records, to HostBill's system log. Debug records are left out. */
    protected function logRecords($operation, array $report)
    {
        foreach (isset($report['logs']) ? $report['logs'] : array() as $record) {
            if ($record['level'] !== 'debug') {
                $this->log($record['level'], $record['message']);
            }
        }
        if (empty($report['ok']) && isset($report['error']['message'])) {
            $this->log('error', "{$operation} failed ({$report['error']['kind']}): {$report['error']['message']}");
        }
    }

    /** One line to the system log, scrubbed. */
    protected function log($level, $message)
    {
        $message = $this->scrub($message);
        if ($level === 'error' || $level === 'warn') {
            hbm_log_error($message, self::LOG_TAG);
        } else {
            hbm_log_system($message, self::LOG_TAG);
        }
    }

    /** The App row as the host expects it; accepts both spellings HostBill uses. */
    public function app()
    {
        $c = $this->connection;
        $pick = function ($keys) use ($c) {
            foreach ($keys as $key) {
                if (isset($c[$key]) && $c[$key] !== '') {
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
        );
        foreach (array('field1', 'field2', 'field3', 'field4') as $field) {
            $app[$field] = $pick(array($field));
        }
        return array_filter($app, function ($v) { return $v !== null; });
    }

    /** The current account, with its client's CloudPe id field. */
    protected function account()
    {
        $details = is_array($this->account_details) ? $this->account_details : array();
        $clientId = isset($details['client_id']) ? $details['client_id'] : 0;
        return array(
            'id' => isset($details['id']) ? $details['id'] : 0,
            'client_id' => $clientId,
            'status' => isset($details['status']) ? $details['status'] : 'Pending',
            'custom_fields' => $this->clientFields($clientId),
        );
    }

    /** The client's CloudPe id custom field (read once per client), keyed by its code. */
    public function clientFields($clientId)
    {
        if (!isset($this->clientFields[$clientId])) {
            $code = $this->idFieldCode();
            $api = new ApiWrapper();
            $reply = $api->getClientDetails(array('id' => $clientId));
            $value = isset($reply['client'][$code]) ? $reply['client'][$code] : null;
            $this->clientFields[$clientId] = ($value === null || $value === '') ? array() : array($code => (string) $value);
        }
        return $this->clientFields[$clientId];
    }

    /** Code of the client custom field holding the CloudPe user id. */
    public function idFieldCode()
    {
        $code = isset($this->connection['field3']) ? trim((string) $this->connection['field3']) : '';
        return $code === '' ? self::DEFAULT_ID_FIELD : $code;
    }

    /** The host for this App: the bundled binary and the App's (or the bundled) component. */
    public function host($timeout = self::OPERATION_TIMEOUT)
    {
        if ($this->host !== null) {
            return $this->host;
        }
        $component = isset($this->connection['field5']) ? trim((string) $this->connection['field5']) : '';
        if ($component === '') {
            $component = __DIR__ . '/cloudpe.wasm';
        }
        return new cloudpe_host(__DIR__ . '/bin/hostbill-module-host', $component, $timeout, $this->secrets(), self::cacheDir());
    }

    /**
     * The compiled-component cache: a folder of the web server's user in the system temp dir (its
     * home is rarely writable). The host creates it private and works without it.
     */
    public static function cacheDir()
    {
        $user = function_exists('posix_geteuid') ? (string) posix_geteuid() : get_current_user();
        return sys_get_temp_dir() . '/hostbill-module-host-cache-' . $user;
    }

    /** Values that must never reach a log or message. */
    public function secrets()
    {
        $secrets = array();
        foreach (array('field2', 'password') as $key) {
            if (isset($this->connection[$key]) && (string) $this->connection[$key] !== '') {
                $secrets[] = (string) $this->connection[$key];
            }
        }
        return $secrets;
    }

    /** `$text` without secrets. */
    public function scrub($text)
    {
        foreach ($this->secrets() as $secret) {
            $text = str_replace(array($secret, urlencode($secret), rawurlencode($secret)), '[REDACTED]', (string) $text);
        }
        return $text;
    }

    /** The admin-facing text of a failed report or decision. */
    protected function errorText(array $report)
    {
        if (isset($report['error']['message'])) {
            return $this->scrub($report['error']['message']);
        }
        return 'CloudPe module: the operation failed without a message';
    }
}
