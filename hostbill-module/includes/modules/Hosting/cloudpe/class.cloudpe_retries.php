<?php

require_once __DIR__ . '/class.cloudpe.php';

/**
 * Failed actions that HostBill's automation ran, retried by the cron.
 *
 * A Create, Suspend or Unsuspend run with no staff member logged in (cloudpe_audit::actor) that
 * fails for a transient reason (isTransient) is queued in the module's own table
 * `hb_cloudpe_retries`, one row per account: the account's latest wanted action wins, and any
 * successful action on the account clears its row. The cron's every-run task (call_EveryRun)
 * retries the rows that are due, with backoff (BACKOFF_SECONDS, tripled per failure, at most
 * MAX_BACKOFF_SECONDS); a retry that succeeds records the status the action stands for in HostBill
 * (editAccountDetails, which does not run the module again). After MAX_FAILURES failures, or a
 * permanent one, the row is kept as `given-up` and the staff are told (cloudpe_audit::notifyStaff).
 * Every step is a row in the account's own log.
 *
 * The table is created by install()/upgrade() and, if missing, on first use
 * (CREATE TABLE IF NOT EXISTS, as public HostBill modules create their own tables, e.g.
 * netway-devops/space includes/modules/Other/gatewayperclient/class.gatewayperclient.php).
 */
class cloudpe_retries
{
    const TABLE = 'hb_cloudpe_retries';
    /** Failures (the first one included) after which the staff are told and retries stop. */
    const MAX_FAILURES = 5;
    /** Wait after the first failure; each further failure triples it. */
    const BACKOFF_SECONDS = 300;
    const MAX_BACKOFF_SECONDS = 21600;
    /** Seconds one retry may take before PHP stops the host. */
    const RETRY_TIMEOUT = 120;
    /** Operations that are queued when automation's run of them fails transiently. */
    const OPERATIONS = array('create', 'suspend', 'unsuspend');
    /** The HostBill status each operation stands for once it succeeded. */
    const TARGET_STATUS = array('create' => 'Active', 'suspend' => 'Suspended', 'unsuspend' => 'Active');
    /** Statuses after which nothing is retried. */
    const FINAL_STATUSES = array('Terminated', 'Cancelled', 'Fraud');

    /** @var cloudpe_db */
    private $db;
    /** @var callable fn(): int, the current Unix time */
    private $clock;
    /** @var bool */
    private $ready = false;

    /**
     * @param object|null $db PDO (default HBRegistry::db())
     * @param callable|null $clock fn(): int (default time())
     */
    public function __construct($db = null, $clock = null)
    {
        $this->db = cloudpe_db::of($db);
        $this->clock = $clock ?: function () {
            return time();
        };
    }

    /**
     * Whether a failed report is worth retrying: CloudPe unreachable or failing (`transport`,
     * `remote-api`), or the module stopped by its deadline. Everything else (`configuration`,
     * `not-found`, `authentication`, `module-refused`, `bad-input`, other traps) needs a person.
     */
    public static function isTransient(array $report)
    {
        $kind = isset($report['error']['kind']) ? (string) $report['error']['kind'] : '';
        if ($kind === 'transport' || $kind === 'remote-api') {
            return true;
        }
        return $kind === 'module-trapped' && isset($report['error']['limit']['name']) && $report['error']['limit']['name'] === 'deadline';
    }

    /** Seconds to wait after the `$failures`-th failure. */
    public static function backoff($failures)
    {
        return (int) min(self::MAX_BACKOFF_SECONDS, self::BACKOFF_SECONDS * pow(3, max(0, (int) $failures - 1)));
    }

    /** Creates the table when it does not exist. */
    public function ensureTable()
    {
        if ($this->ready) {
            return;
        }
        $this->db->execute('CREATE TABLE IF NOT EXISTS `' . self::TABLE . '` ('
            . '`account_id` int(11) NOT NULL, '
            . '`server_id` int(11) NOT NULL, '
            . '`operation` varchar(16) NOT NULL, '
            . '`state` varchar(16) NOT NULL, '
            . '`failures` int(11) NOT NULL, '
            . '`first_failed` datetime NOT NULL, '
            . '`next_at` datetime NOT NULL, '
            . '`last_kind` varchar(32) NOT NULL, '
            . '`last_error` text NOT NULL, '
            . 'PRIMARY KEY (`account_id`)'
            . ') ENGINE=InnoDB DEFAULT CHARSET=utf8', array());
        $this->ready = true;
    }

    /**
     * Queues `$operation` of account `$accountId` after a failure. The same operation already
     * queued counts one more failure; another one replaces it.
     *
     * @return array the row as stored (`state` is `given-up` when this failure was the last allowed)
     */
    public function queue($accountId, $serverId, $operation, $kind, $error)
    {
        $this->ensureTable();
        $existing = $this->find($accountId);
        $now = $this->now();
        if ($existing !== null && $existing['operation'] === $operation && $existing['state'] === 'queued') {
            return $this->failed($existing, $kind, $error);
        }
        if ($existing !== null) {
            $this->clear($accountId);
        }
        $row = array(
            'account_id' => (string) $accountId, 'server_id' => (string) $serverId, 'operation' => (string) $operation,
            'state' => 'queued', 'failures' => '1', 'first_failed' => self::time($now),
            'next_at' => self::time($now + self::backoff(1)), 'last_kind' => (string) $kind, 'last_error' => self::cut($error),
        );
        $this->db->execute('INSERT INTO `' . self::TABLE . '` (`' . implode('`, `', array_keys($row)) . '`) VALUES (:' . implode(', :', array_keys($row)) . ')', self::params($row));
        return $row;
    }

    /**
     * Counts one more failure of a queued row: the next attempt after the backoff, or `given-up`
     * after MAX_FAILURES or when `$permanent`.
     *
     * @return array the row as stored
     */
    public function failed(array $row, $kind, $error, $permanent = false)
    {
        $row['failures'] = (string) ((int) $row['failures'] + 1);
        $row['last_kind'] = (string) $kind;
        $row['last_error'] = self::cut($error);
        if ($permanent || (int) $row['failures'] >= self::MAX_FAILURES) {
            $row['state'] = 'given-up';
        } else {
            $row['next_at'] = self::time($this->now() + self::backoff((int) $row['failures']));
        }
        $this->db->execute('UPDATE `' . self::TABLE . '` SET `state` = :state, `failures` = :failures, `next_at` = :next_at, `last_kind` = :last_kind, `last_error` = :last_error WHERE `account_id` = :account_id', array(
            ':state' => $row['state'], ':failures' => $row['failures'], ':next_at' => $row['next_at'],
            ':last_kind' => $row['last_kind'], ':last_error' => $row['last_error'], ':account_id' => (string) $row['account_id'],
        ));
        return $row;
    }

    /** The account's row, or null. */
    public function find($accountId)
    {
        $this->ensureTable();
        $rows = $this->db->select('SELECT ' . self::COLUMNS . ' FROM `' . self::TABLE . '` WHERE `account_id` = :account_id', array(':account_id' => (string) $accountId));
        return $rows ? $rows[0] : null;
    }

    /** Removes the account's row; returns the row it removed, or null. */
    public function clear($accountId)
    {
        $row = $this->find($accountId);
        if ($row !== null) {
            $this->db->execute('DELETE FROM `' . self::TABLE . '` WHERE `account_id` = :account_id', array(':account_id' => (string) $accountId));
        }
        return $row;
    }

    /** Queued rows whose next attempt is due, oldest first. */
    public function due()
    {
        $this->ensureTable();
        $now = self::time($this->now());
        $rows = array_filter($this->db->select('SELECT ' . self::COLUMNS . ' FROM `' . self::TABLE . '` WHERE `state` = :state', array(':state' => 'queued')), function ($row) use ($now) {
            return strcmp((string) $row['next_at'], $now) <= 0;
        });
        usort($rows, function ($a, $b) {
            return strcmp($a['next_at'], $b['next_at']);
        });
        return array_values($rows);
    }

    /** The current Unix time. */
    public function now()
    {
        return (int) call_user_func($this->clock);
    }

    /** A Unix time as the table stores it (UTC). */
    public static function time($unix)
    {
        return gmdate('Y-m-d H:i:s', (int) $unix);
    }

    const COLUMNS = '`account_id`, `server_id`, `operation`, `state`, `failures`, `first_failed`, `next_at`, `last_kind`, `last_error`';

    /**
     * The cron's every-run task: retries every due row (see the class comment). Returns the task
     * output: one line, or one per retried account; never throws.
     *
     * @param cloudpe $prototype the controller's module (not connected)
     * @param cloudpe_apps|null $apps
     * @param object|null $api ApiWrapper
     * @param cloudpe_retries|null $queue
     * @return string
     */
    public static function everyRun(cloudpe $prototype, $apps = null, $api = null, $queue = null)
    {
        $queue = $queue ?: new cloudpe_retries();
        $apps = $apps ?: new cloudpe_apps($api);
        $api = $api ?: new ApiWrapper();
        try {
            $due = $queue->due();
        } catch (\Throwable $e) {
            $message = 'CloudPe retries: could not read the retry queue (' . self::TABLE . '): ' . $prototype->scrub($e->getMessage());
            hbm_log_error($message, cloudpe::LOG_TAG);
            return $message;
        }
        if (!$due) {
            return 'CloudPe retries: nothing to do (no failed action is due for a retry)';
        }
        $lines = array();
        foreach ($due as $row) {
            $module = clone $prototype;
            try {
                $lines[] = 'CloudPe retries: ' . $queue->retry($module, $row, $apps, $api);
            } catch (\Throwable $e) {
                $message = "account #{$row['account_id']} {$row['operation']}: stopped by an unexpected error: " . $module->scrub(get_class($e) . ': ' . $e->getMessage());
                hbm_log_error("retry of {$message}", cloudpe::LOG_TAG);
                $lines[] = 'CloudPe retries: ' . $message;
            }
        }
        return implode("\n", $lines);
    }

    /**
     * Retries one row with `$module` (connected here to the account's App). Returns what happened,
     * as the task output's line.
     */
    public function retry(cloudpe $module, array $row, cloudpe_apps $apps, $api)
    {
        $id = (string) $row['account_id'];
        $operation = (string) $row['operation'];
        $attempt = (int) $row['failures'] + 1;
        $subject = "account #{$id} {$operation}";
        $audit = new cloudpe_audit(array($module, 'scrub'), $this->db);
        $automation = array('login' => cloudpe_audit::AUTOMATION, 'manual' => false);
        $reply = $api->getAccountDetails(array('id' => $id));
        $details = is_array($reply) && !empty($reply['success']) && isset($reply['details']) && is_array($reply['details']) ? $reply['details'] : null;
        if ($details === null) {
            $this->clear($id);
            hbm_log_error("retry of {$subject}: dropped, HostBill has no such account any more", cloudpe::LOG_TAG);
            return "{$subject}: dropped (HostBill has no such account any more)";
        }
        $status = isset($details['status']) ? (string) $details['status'] : '';
        if (in_array($status, self::FINAL_STATUSES, true)) {
            $this->clear($id);
            $audit->account($id, "CloudPe: queued {$operation} dropped (the account is {$status})", 'CloudPeRetry', true, array(), '', $automation);
            return "{$subject}: dropped (the account is {$status})";
        }
        $serverId = isset($details['server_id']) && (string) $details['server_id'] !== '' ? (string) $details['server_id'] : (string) $row['server_id'];
        try {
            $module->connect($apps->details($serverId));
            $module->setAccount($details);
            $result = $module->retry($operation);
        } catch (cloudpe_apps_error $e) {
            // The account's App is gone or unreadable: a person has to look, retrying cannot help.
            $result = array('ok' => false, 'kind' => 'configuration', 'message' => $e->getMessage(), 'transient' => false, 'facts' => array());
        }
        if ($result['ok']) {
            $this->clear($id);
            $target = self::TARGET_STATUS[$operation];
            $changes = array();
            $note = '';
            if ($status !== $target) {
                $refused = cloudpe_sync::recordStatus($api, $id, $target);
                if ($refused !== null) {
                    $note = "; HostBill did not record the status {$target}: {$refused}";
                } else {
                    $changes[] = array('name' => 'status', 'from' => $status, 'to' => $target);
                    $note = "; status {$status} -> {$target}";
                }
            }
            $changes[] = array('name' => 'attempt', 'from' => '', 'to' => (string) $attempt);
            $audit->account($id, "CloudPe: {$operation} retried by the cron, succeeded: " . $result['message'] . $note, 'CloudPeRetry', $note === '' || strpos($note, 'did not record') === false, array_merge($changes, cloudpe_audit::factChanges($result['facts'])), strpos($note, 'did not record') === false ? '' : ltrim($note, '; '), $automation);
            hbm_log_system("retry of {$subject}: succeeded on attempt {$attempt}{$note}", cloudpe::LOG_TAG);
            return "{$subject}: succeeded on attempt {$attempt}{$note}";
        }
        $row = $this->failed($row, $result['kind'], $result['message'], !$result['transient']);
        $error = "({$result['kind']}) {$result['message']}";
        if ($row['state'] === 'given-up') {
            $why = $result['transient'] ? "failed {$row['failures']} times" : "failed permanently ({$result['kind']})";
            $told = $audit->notifyStaff(
                isset($details['client_id']) ? $details['client_id'] : '',
                $id,
                "CloudPe: {$operation} of account #{$id} {$why}; retries stopped",
                "HostBill's automation ran {$operation} on account #{$id} ({$status}) at {$row['first_failed']} UTC; it failed, was retried by the CloudPe cron and {$why}. Last error {$error}. Fix the cause, then run {$operation} on the account page."
            );
            $audit->account($id, "CloudPe: {$operation} retried by the cron, {$why}; retries stopped, staff told ({$told})", 'CloudPeRetry', false, array(array('name' => 'attempt', 'from' => '', 'to' => (string) $attempt)), $error, $automation);
            return "{$subject}: {$why}, retries stopped; staff told ({$told}): " . $module->scrub($result['message']);
        }
        $audit->account($id, "CloudPe: {$operation} retried by the cron, failed again; next attempt after {$row['next_at']} UTC", 'CloudPeRetry', false, array(array('name' => 'attempt', 'from' => '', 'to' => (string) $attempt)), $error, $automation);
        return "{$subject}: failed again ({$result['kind']}), attempt {$attempt} of " . self::MAX_FAILURES . ", next after {$row['next_at']} UTC: " . $module->scrub($result['message']);
    }

    private static function params(array $row)
    {
        $params = array();
        foreach ($row as $column => $value) {
            $params[":{$column}"] = (string) $value;
        }
        return $params;
    }

    private static function cut($text)
    {
        $text = (string) $text;
        return strlen($text) > 1000 ? substr($text, 0, 1000) . '...' : $text;
    }
}
