<?php

require_once __DIR__ . '/class.cloudpe.php';

/**
 * Failed actions that HostBill's automation ran, retried by the cron.
 *
 * A Create, Suspend or Unsuspend run with no staff member logged in (cloudpe_audit::actor) that
 * fails for a transient reason (isTransient) is queued in the module's own table
 * `hb_cloudpe_retries`, one row per account: the account's latest wanted action wins, and any
 * later action on the account through the module (staff or automation, whatever its outcome)
 * supersedes a queued one (cloudpe::afterSuccess, cloudpe::afterFailure). The cron's every-run
 * task (call_EveryRun) retries the rows that are due, with backoff (BACKOFF_SECONDS, tripled per
 * failure, at most MAX_BACKOFF_SECONDS), within EVERY_RUN_BUDGET seconds, and stops trying an App
 * after its first transient failure in a run. Before a replay it checks that the action is still
 * wanted (isStillWanted: the account's status, and nothing logged on the account since by anyone
 * else). A retry that succeeds hands the account to HostBill's own action (Admin API
 * accountSuspend / accountUnsuspend / accountCreate), so HostBill records the status and runs
 * its e-mails and hooks; the module's action sees the replay (takeReplayed) and does not call
 * CloudPe again. After MAX_FAILURES failures, or a permanent one, the row is kept as `given-up`:
 * a permanent failure tells the staff about the account (cloudpe_audit::notifyStaff), a
 * transient one goes into its App's one outage alert (table `hb_cloudpe_outages`: one alert per
 * App per outage, its notes updated as accounts give up, noted when CloudPe answers again).
 * Every step is a row in the account's own log.
 *
 * The tables are created by install()/upgrade() only (createTables): a CREATE TABLE, even IF
 * NOT EXISTS, commits any open transaction in MySQL, so no action or cron run issues one.
 */
class cloudpe_retries
{
    const TABLE = 'hb_cloudpe_retries';
    /** One row per App whose CloudPe failed transiently and has not answered since. */
    const OUTAGES = 'hb_cloudpe_outages';
    /** Failures (the first one included) after which the staff are told and retries stop. */
    const MAX_FAILURES = 5;
    /** Wait after the first failure; each further failure triples it. */
    const BACKOFF_SECONDS = 300;
    const MAX_BACKOFF_SECONDS = 21600;
    /** Seconds one retry may take before PHP stops the host (a suspend is one or two requests). */
    const RETRY_TIMEOUT = 60;
    /**
     * Seconds the every-run task may spend retrying, whatever is queued: HostBill's cron runs
     * every 5 minutes, and a hanging CloudPe must not hold it (each retry gets what is left).
     */
    const EVERY_RUN_BUDGET = 150;
    /** A retry is not started with less time than this left of the budget. */
    const MIN_RETRY_SECONDS = 15;
    /**
     * Account-log rows written this soon after the module's row of a failure are taken to be
     * HostBill's own record of that same action, not a later change.
     */
    const SAME_ACTION_SECONDS = 60;
    /** Operations that are queued when automation's run of them fails transiently. */
    const OPERATIONS = array('create', 'suspend', 'unsuspend');
    /** The HostBill status each operation stands for once it succeeded. */
    const TARGET_STATUS = array('create' => 'Active', 'suspend' => 'Suspended', 'unsuspend' => 'Active');
    /** The HostBill status an account keeps while its queued operation is still wanted. */
    const WANTED_FROM = array('create' => 'Pending', 'suspend' => 'Active', 'unsuspend' => 'Suspended');
    /** The Admin API call that runs each operation through HostBill's own flow. */
    const HOSTBILL_CALL = array('create' => 'accountCreate', 'suspend' => 'accountSuspend', 'unsuspend' => 'accountUnsuspend');
    /** Statuses after which nothing is retried. */
    const FINAL_STATUSES = array('Terminated', 'Cancelled', 'Fraud');

    /**
     * @var array<string, array> account id => what a retry just did on CloudPe, while HostBill's
     * own action for it runs the module (see takeReplayed)
     */
    private static $replayed = array();

    /** @var cloudpe_db */
    private $db;
    /** @var callable fn(): int, the current Unix time */
    private $clock;
    /** @var callable fn(): float, seconds on a clock that only moves forward (the time budget) */
    private $timer;

    /**
     * @param object|null $db PDO (default HBRegistry::db())
     * @param callable|null $clock fn(): int (default time())
     * @param callable|null $timer fn(): float (default microtime(true))
     */
    public function __construct($db = null, $clock = null, $timer = null)
    {
        $this->db = cloudpe_db::of($db);
        $this->clock = $clock ?: function () {
            return time();
        };
        $this->timer = $timer ?: function () {
            return microtime(true);
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

    /**
     * Creates the module's tables when they do not exist. Called by install() and upgrade() only.
     */
    public function createTables()
    {
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
        $this->db->execute('CREATE TABLE IF NOT EXISTS `' . self::OUTAGES . '` ('
            . '`server_id` int(11) NOT NULL, '
            . '`opened` datetime NOT NULL, '
            . '`last_failed` datetime NOT NULL, '
            . '`failures` int(11) NOT NULL, '
            . '`last_error` text NOT NULL, '
            . '`given_up` text NOT NULL, '
            . '`alert` varchar(64) NOT NULL, '
            . '`ticket_id` int(11) NOT NULL, '
            . 'PRIMARY KEY (`server_id`)'
            . ') ENGINE=InnoDB DEFAULT CHARSET=utf8', array());
    }

    /**
     * What a retry did on CloudPe for account `$accountId` and `$operation`, taken once: HostBill's
     * own action, called by the retry right after, runs the module's action, which then only
     * reports it instead of calling CloudPe again. Null when no retry is replaying it.
     *
     * @return array|null ['attempt' => int, 'message' => string, 'report' => array]
     */
    public static function takeReplayed($accountId, $operation)
    {
        $key = (string) $accountId;
        if (!isset(self::$replayed[$key]) || self::$replayed[$key]['operation'] !== (string) $operation) {
            return null;
        }
        $done = self::$replayed[$key];
        unset(self::$replayed[$key]);
        return $done;
    }

    /**
     * Queues `$operation` of account `$accountId` after a failure. The same operation already
     * queued counts one more failure; another one replaces it.
     *
     * @return array the row as stored (`state` is `given-up` when this failure was the last allowed)
     */
    public function queue($accountId, $serverId, $operation, $kind, $error)
    {
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
     * The cron's every-run task: retries every due row (see the class comment) within
     * EVERY_RUN_BUDGET seconds; after an App's first transient failure in this run, its other due
     * rows wait for the next run. Returns the task output: one line, or one per retried account
     * and one per App or budget stop; never throws.
     *
     * @param cloudpe $prototype the controller's module (not connected)
     * @param cloudpe_apps|null $apps
     * @param object|null $api ApiWrapper
     * @param cloudpe_retries|null $queue
     * @param int $budget seconds
     * @return string
     */
    public static function everyRun(cloudpe $prototype, $apps = null, $api = null, $queue = null, $budget = self::EVERY_RUN_BUDGET)
    {
        $queue = $queue ?: new cloudpe_retries();
        $apps = $apps ?: new cloudpe_apps($api);
        $api = $api ?: new ApiWrapper();
        try {
            $due = $queue->due();
        } catch (\Throwable $e) {
            $message = 'CloudPe retries: could not read the retry queue (' . self::TABLE . '): ' . $prototype->scrub($e->getMessage())
                . '; the module\'s tables are created when HostBill installs or upgrades the module (Settings → Modules)';
            hbm_log_error($message, cloudpe::LOG_TAG);
            return $message;
        }
        if (!$due) {
            return 'CloudPe retries: nothing to do (no failed action is due for a retry)';
        }
        $started = $queue->elapsed();
        $lines = array();
        /** @var array<string, array> server id => [why it stopped, rows left] */
        $stopped = array();
        $left = 0;
        foreach ($due as $row) {
            $server = (string) $row['server_id'];
            if (isset($stopped[$server])) {
                $stopped[$server][1]++;
                continue;
            }
            $remaining = $budget - ($queue->elapsed() - $started);
            if ($remaining < self::MIN_RETRY_SECONDS) {
                $left++;
                continue;
            }
            $module = clone $prototype;
            try {
                $result = $queue->retry($module, $row, $apps, $api, min(self::RETRY_TIMEOUT, $remaining));
                $lines[] = 'CloudPe retries: ' . $result['line'];
                if (!empty($result['stop'])) {
                    $stopped[$server] = array($result['stop'], 0);
                }
            } catch (\Throwable $e) {
                $message = "account #{$row['account_id']} {$row['operation']}: stopped by an unexpected error: " . $module->scrub(get_class($e) . ': ' . $e->getMessage());
                hbm_log_error("retry of {$message}", cloudpe::LOG_TAG);
                $lines[] = 'CloudPe retries: ' . $message;
            }
        }
        foreach ($stopped as $server => $stop) {
            if ($stop[1] > 0) {
                $lines[] = "CloudPe retries: App #{$server}: {$stop[1]} more due " . ($stop[1] === 1 ? 'retry waits' : 'retries wait') . " for the next run ({$stop[0]} in this run)";
            }
        }
        if ($left > 0) {
            $lines[] = "CloudPe retries: {$left} due " . ($left === 1 ? 'retry waits' : 'retries wait') . " for the next run (this run's time budget of {$budget} s is used)";
        }
        return implode("\n", $lines);
    }

    /** Seconds on the budget's clock. */
    public function elapsed()
    {
        return (float) call_user_func($this->timer);
    }

    /**
     * Whether queued `$row` is still wanted for the account `$details` (getAccountDetails'
     * `details`): null if it is, else why not. Its status must still be the one the operation
     * acts on (WANTED_FROM: a queued Suspend on an Active account, ...), and nobody else may have
     * logged anything on the account since the failure that queued it (rows of hb_account_logs
     * written after the module's own row of that failure, by another module or HostBill itself,
     * more than SAME_ACTION_SECONDS later).
     */
    public function isStillWanted(array $row, array $details)
    {
        $operation = (string) $row['operation'];
        $status = isset($details['status']) ? (string) $details['status'] : '';
        $from = self::WANTED_FROM[$operation];
        if ($status !== $from) {
            return "the account is {$status} now, and a queued {$operation} acts only on a {$from} account";
        }
        $rows = $this->db->select('SELECT `id`, `date`, `admin_login`, `module`, `action`, `event` FROM `hb_account_logs` WHERE `account_id` = :account_id', array(':account_id' => (string) $row['account_id']));
        usort($rows, function ($a, $b) {
            return (int) $a['id'] - (int) $b['id'];
        });
        $queuedAt = null;
        $queuedTime = false;
        foreach ($rows as $log) {
            if (self::ours($log) && $log['event'] === 'CloudPe' . ucfirst($operation) && strpos((string) $log['action'], "CloudPe: {$operation} failed; queued") === 0) {
                $queuedAt = (int) $log['id'];
                $queuedTime = strtotime((string) $log['date']);
            }
        }
        if ($queuedAt === null) {
            return null;
        }
        foreach ($rows as $log) {
            $time = strtotime((string) $log['date']);
            // HostBill's own row of the failed action itself comes right after the module's.
            $sameAction = $queuedTime !== false && $time !== false && $time - $queuedTime <= self::SAME_ACTION_SECONDS;
            if ((int) $log['id'] > $queuedAt && !self::ours($log) && !$sameAction) {
                $who = trim((string) $log['admin_login']) !== '' ? (string) $log['admin_login'] : 'HostBill';
                return "{$who} changed the account since ({$log['date']}: " . self::cut($log['action'], 120) . ')';
            }
        }
        return null;
    }

    /** Whether an hb_account_logs row is the module's own. */
    private static function ours(array $log)
    {
        return strcasecmp((string) $log['module'], cloudpe_audit::MODULE) === 0;
    }

    /**
     * Retries one row with `$module` (connected here to the account's App), within `$timeout`
     * seconds. Returns ['line' => the task output's line, 'stop' => why the App's other rows wait
     * for the next run, or null].
     *
     * @return array{line: string, stop: string|null}
     */
    public function retry(cloudpe $module, array $row, cloudpe_apps $apps, $api, $timeout = self::RETRY_TIMEOUT)
    {
        $id = (string) $row['account_id'];
        $operation = (string) $row['operation'];
        $attempt = (int) $row['failures'] + 1;
        $subject = "account #{$id} {$operation}";
        $audit = new cloudpe_audit(array($module, 'scrub'), $this->db, $api);
        $automation = array('login' => cloudpe_audit::AUTOMATION, 'manual' => false);
        $reply = $api->getAccountDetails(array('id' => $id));
        $details = is_array($reply) && !empty($reply['success']) && isset($reply['details']) && is_array($reply['details']) ? $reply['details'] : null;
        if ($details === null) {
            $this->clear($id);
            hbm_log_error("retry of {$subject}: dropped, HostBill has no such account any more", cloudpe::LOG_TAG);
            return array('line' => "{$subject}: dropped (HostBill has no such account any more)", 'stop' => null);
        }
        $status = isset($details['status']) ? (string) $details['status'] : '';
        if (in_array($status, self::FINAL_STATUSES, true)) {
            $this->clear($id);
            $audit->account($id, "CloudPe: queued {$operation} dropped (the account is {$status})", 'CloudPeRetry', true, array(), '', $automation);
            return array('line' => "{$subject}: dropped (the account is {$status})", 'stop' => null);
        }
        $unwanted = $this->isStillWanted($row, $details);
        if ($unwanted !== null) {
            $this->clear($id);
            $audit->account($id, "CloudPe: queued {$operation} dropped, no longer wanted: {$unwanted}", 'CloudPeRetry', true, array(), '', $automation);
            return array('line' => "{$subject}: dropped, no longer wanted ({$unwanted})", 'stop' => null);
        }
        $serverId = isset($details['server_id']) && (string) $details['server_id'] !== '' ? (string) $details['server_id'] : (string) $row['server_id'];
        try {
            $module->connect($apps->details($serverId));
            $module->setAccount($details);
            $result = $module->retry($operation, $timeout, $this->outageLogged($serverId));
        } catch (cloudpe_apps_error $e) {
            // The account's App is gone or unreadable: a person has to look, retrying cannot help.
            $result = array('ok' => false, 'kind' => 'configuration', 'message' => $e->getMessage(), 'transient' => false, 'facts' => array());
        }
        if ($result['ok']) {
            $this->clear($id);
            $this->recovered($serverId, $module, $api);
            $note = $this->handToHostBill($api, $id, $operation, $status, $attempt, $result['message'], isset($result['report']) ? $result['report'] : array());
            $failed = strpos($note, 'did not record') !== false;
            $changes = array();
            if (!$failed && $status !== self::TARGET_STATUS[$operation]) {
                $changes[] = array('name' => 'status', 'from' => $status, 'to' => self::TARGET_STATUS[$operation]);
            }
            $changes[] = array('name' => 'attempt', 'from' => '', 'to' => (string) $attempt);
            $audit->account($id, "CloudPe: {$operation} retried by the cron, succeeded: " . $result['message'] . $note, 'CloudPeRetry', !$failed, array_merge($changes, cloudpe_audit::factChanges($result['facts'])), $failed ? ltrim($note, '; ') : '', $automation);
            hbm_log_system("retry of {$subject}: succeeded on attempt {$attempt}{$note}", cloudpe::LOG_TAG);
            return array('line' => "{$subject}: succeeded on attempt {$attempt}{$note}", 'stop' => null);
        }
        $row = $this->failed($row, $result['kind'], $result['message'], !$result['transient']);
        $error = "({$result['kind']}) {$result['message']}";
        $stop = null;
        $outage = null;
        if ($result['transient']) {
            $stop = "CloudPe failed with {$result['kind']}";
            $outage = $this->outageFailed($serverId, $error, $module);
        }
        if ($row['state'] === 'given-up') {
            $why = $result['transient'] ? "failed {$row['failures']} times" : "failed permanently ({$result['kind']})";
            if ($outage !== null) {
                $told = $this->alertOutage($outage, $row, $details, $audit, $api, $module);
            } else {
                $told = $audit->notifyStaff(
                    isset($details['client_id']) ? $details['client_id'] : '',
                    $id,
                    "CloudPe: {$operation} of account #{$id} {$why}; retries stopped",
                    "HostBill's automation ran {$operation} on account #{$id} ({$status}) at {$row['first_failed']} UTC; it failed, was retried by the CloudPe cron and {$why}. Last error {$error}. Fix the cause, then run {$operation} on the account page."
                );
            }
            $audit->account($id, "CloudPe: {$operation} retried by the cron, {$why}; retries stopped, staff told ({$told})", 'CloudPeRetry', false, array(array('name' => 'attempt', 'from' => '', 'to' => (string) $attempt)), $error, $automation);
            return array('line' => "{$subject}: {$why}, retries stopped; staff told ({$told}): " . $module->scrub($result['message']), 'stop' => $stop);
        }
        $audit->account($id, "CloudPe: {$operation} retried by the cron, failed again; next attempt after {$row['next_at']} UTC", 'CloudPeRetry', false, array(array('name' => 'attempt', 'from' => '', 'to' => (string) $attempt)), $error, $automation);
        return array('line' => "{$subject}: failed again ({$result['kind']}), attempt {$attempt} of " . self::MAX_FAILURES . ", next after {$row['next_at']} UTC: " . $module->scrub($result['message']), 'stop' => $stop);
    }

    /**
     * After a retry did `$operation` on CloudPe: HostBill's own action for it (Admin API
     * accountSuspend / accountUnsuspend / accountCreate, which "invoke" the module's method and
     * record the status through HostBill's flow, with its e-mails and hooks), the module's action
     * reporting the retry's work instead of calling CloudPe again (takeReplayed). When HostBill
     * refuses it, or has no such call, the status is recorded with editAccountDetails instead.
     *
     * @return string what to add to the retry's line ('' when HostBill's action ran)
     */
    private function handToHostBill($api, $id, $operation, $status, $attempt, $message, array $report = array())
    {
        $target = self::TARGET_STATUS[$operation];
        $call = self::HOSTBILL_CALL[$operation];
        $refused = null;
        if (is_callable(array($api, $call))) {
            // `report`: what the module's action stores of the retry's work (Create: the link).
            self::$replayed[(string) $id] = array('operation' => $operation, 'attempt' => $attempt, 'message' => (string) $message, 'report' => $report);
            try {
                $reply = $api->$call(array('id' => $id));
            } finally {
                $ran = !isset(self::$replayed[(string) $id]);
                unset(self::$replayed[(string) $id]);
            }
            if (is_array($reply) && !empty($reply['success']) && $ran) {
                return "; HostBill's {$call} recorded it (status {$status} -> {$target})";
            }
            $refused = "HostBill's {$call} " . ($ran ? 'refused it: ' . self::apiError($reply) : 'did not run the module');
        }
        if ($status === $target) {
            return $refused === null ? '' : "; {$refused}";
        }
        $notRecorded = cloudpe_sync::recordStatus($api, $id, $target);
        $why = $refused === null ? "HostBill has no {$call}" : $refused;
        if ($notRecorded !== null) {
            return "; {$why}; HostBill did not record the status {$target}: {$notRecorded}";
        }
        return "; {$why}; status {$status} -> {$target} recorded with editAccountDetails";
    }

    /** Whether App `$serverId` has an open outage (its one system-log line is written). */
    private function outageLogged($serverId)
    {
        try {
            return $this->outage($serverId) !== null;
        } catch (\Throwable $e) {
            return false;
        }
    }

    /** The App's open outage, or null. */
    public function outage($serverId)
    {
        $rows = $this->db->select('SELECT `server_id`, `opened`, `last_failed`, `failures`, `last_error`, `given_up`, `alert`, `ticket_id` FROM `' . self::OUTAGES . '` WHERE `server_id` = :server_id', array(':server_id' => (string) $serverId));
        return $rows ? $rows[0] : null;
    }

    /**
     * Counts a transient failure of App `$serverId`: opens its outage (one system-log line for
     * the whole outage) or updates it. Returns the outage row.
     */
    private function outageFailed($serverId, $error, cloudpe $module)
    {
        $now = self::time($this->now());
        $error = self::cut($module->scrub($error));
        $outage = $this->outage($serverId);
        if ($outage === null) {
            $outage = array('server_id' => (string) $serverId, 'opened' => $now, 'last_failed' => $now, 'failures' => '1', 'last_error' => $error, 'given_up' => '', 'alert' => '', 'ticket_id' => '0');
            $this->db->execute('INSERT INTO `' . self::OUTAGES . '` (`' . implode('`, `', array_keys($outage)) . '`) VALUES (:' . implode(', :', array_keys($outage)) . ')', self::params($outage));
            hbm_log_error("CloudPe App #{$serverId}: CloudPe failed for the retries since {$now} UTC {$error}; its queued actions wait, one alert for the whole outage", cloudpe::LOG_TAG);
            return $outage;
        }
        $outage['last_failed'] = $now;
        $outage['failures'] = (string) ((int) $outage['failures'] + 1);
        $outage['last_error'] = $error;
        $this->db->execute('UPDATE `' . self::OUTAGES . '` SET `last_failed` = :last_failed, `failures` = :failures, `last_error` = :last_error WHERE `server_id` = :server_id', array(
            ':last_failed' => $outage['last_failed'], ':failures' => $outage['failures'], ':last_error' => $outage['last_error'], ':server_id' => (string) $serverId,
        ));
        return $outage;
    }

    /**
     * Tells the staff that `$row` gave up during its App's outage: the outage's one alert (an
     * internal ticket, or an admin note) the first time, its notes updated (Admin API
     * addTicketNotes) after that. Returns where the staff were told.
     */
    private function alertOutage(array $outage, array $row, array $details, cloudpe_audit $audit, $api, cloudpe $module)
    {
        $server = (string) $outage['server_id'];
        $entry = "#{$row['account_id']} {$row['operation']}";
        $givenUp = $outage['given_up'] === '' ? array() : explode(', ', $outage['given_up']);
        $givenUp[] = $entry;
        $outage['given_up'] = implode(', ', $givenUp);
        $summary = "CloudPe of App #{$server} has failed for the CloudPe cron's retries since {$outage['opened']} UTC ({$outage['failures']} failures, the last at {$outage['last_failed']} UTC: {$outage['last_error']}). "
            . count($givenUp) . ' queued ' . (count($givenUp) === 1 ? 'action' : 'actions') . " stopped after " . self::MAX_FAILURES . " failures: {$outage['given_up']}. When CloudPe answers again, run them on their account pages; this alert is noted then.";
        if ($outage['alert'] === '') {
            $told = $audit->notifyStaff(isset($details['client_id']) ? $details['client_id'] : '', $row['account_id'], "CloudPe: App #{$server} failing since {$outage['opened']} UTC; queued actions stopped", $summary);
            $outage['alert'] = self::cut($told, 60);
            $outage['ticket_id'] = preg_match('/^internal ticket #(\d+)$/', $told, $m) ? $m[1] : '0';
        } else {
            $told = "the App's outage alert, {$outage['alert']}";
            if ((int) $outage['ticket_id'] > 0 && is_callable(array($api, 'addTicketNotes'))) {
                $reply = $api->addTicketNotes(array('id' => $outage['ticket_id'], 'notes' => $module->scrub($summary)));
                if (!is_array($reply) || empty($reply['success'])) {
                    $told .= ' (its notes were not updated: ' . self::apiError($reply) . ')';
                }
            }
        }
        $this->db->execute('UPDATE `' . self::OUTAGES . '` SET `given_up` = :given_up, `alert` = :alert, `ticket_id` = :ticket_id WHERE `server_id` = :server_id', array(
            ':given_up' => $outage['given_up'], ':alert' => $outage['alert'], ':ticket_id' => (string) $outage['ticket_id'], ':server_id' => $server,
        ));
        return $told;
    }

    /**
     * CloudPe of App `$serverId` answered: closes its outage, if it had one, with one system-log
     * line and a note on its alert. Never throws.
     */
    public function recovered($serverId, cloudpe $module, $api = null)
    {
        try {
            $outage = $this->outage($serverId);
        } catch (\Throwable $e) {
            return; // no outage table: the retry queue's own error says what to do
        }
        if ($outage === null) {
            return;
        }
        try {
            $this->db->execute('DELETE FROM `' . self::OUTAGES . '` WHERE `server_id` = :server_id', array(':server_id' => (string) $serverId));
            $now = self::time($this->now());
            $text = "CloudPe of App #{$serverId} answered again at {$now} UTC, after failing since {$outage['opened']} UTC ({$outage['failures']} failures)"
                . ($outage['given_up'] !== '' ? "; stopped actions to run again on their account pages: {$outage['given_up']}" : '');
            hbm_log_system($text, cloudpe::LOG_TAG);
            if ((int) $outage['ticket_id'] > 0) {
                $api = $api ?: new ApiWrapper();
                if (is_callable(array($api, 'addTicketNotes'))) {
                    $api->addTicketNotes(array('id' => $outage['ticket_id'], 'notes' => $module->scrub("Resolved: {$text}.")));
                }
            }
        } catch (\Throwable $e) {
            hbm_log_error("CloudPe App #{$serverId}: could not close its outage record (" . self::OUTAGES . '): ' . $module->scrub($e->getMessage()), cloudpe::LOG_TAG);
        }
    }

    private static function params(array $row)
    {
        $params = array();
        foreach ($row as $column => $value) {
            $params[":{$column}"] = (string) $value;
        }
        return $params;
    }

    /** The error text of a failed Admin API reply. */
    private static function apiError($reply)
    {
        if (is_array($reply) && isset($reply['error'])) {
            return is_array($reply['error']) ? implode('; ', array_map('strval', $reply['error'])) : (string) $reply['error'];
        }
        return 'no usable reply';
    }

    private static function cut($text, $max = 1000)
    {
        $text = (string) $text;
        return strlen($text) > $max ? substr($text, 0, $max) . '...' : $text;
    }
}
