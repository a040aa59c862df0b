<?php

/**
 * Where the module leaves a trace for the provider's staff, following HostBill's conventions as
 * public code shows them, in one place:
 *
 *  - who ran an action: `hbm_logged_admin()` (an array with `id` when a staff member is logged in;
 *    public cron controllers test `isset($aAdmin['id'])` to tell an admin's run from the cron's),
 *    else "Automation", the `admin_login` public modules write for unattended runs;
 *  - the account's own log (Accounts → the account → Logs): a row of `hb_account_logs` (columns of
 *    HostBill's install.sql; `change` is serialize(['serialized' => '1', 'data' => [['name',
 *    'from', 'to'], ...]]), `result` 1/0, as public modules insert it through HostBill's PDO
 *    handle), falling back to `hbm_log_account($message, $accountId)` when the insert fails;
 *  - telling the staff: Admin API `addTicket` with `client_id` and `isinternal` = 1 (an internal
 *    ticket, not shown to the client), falling back to `addAdminNote` on the account;
 *  - the per-call log: HostBill documents no module call log for modules, so (an inference) each
 *    call is a system-log line starting "call: " under the module's tag.
 *
 * Every text is scrubbed of the App's secrets before it is written.
 */
class cloudpe_audit
{
    /** `module` column of the account log rows. */
    const MODULE = 'CloudPe';
    /** `admin_login` of rows written with no staff member logged in (public modules' word). */
    const AUTOMATION = 'Automation';
    /** Prefix of the per-call lines in the system log. */
    const CALL_PREFIX = 'call: ';

    /** @var callable fn(string): string */
    private $scrub;
    /** @var cloudpe_db */
    private $db;
    /** @var object|null ApiWrapper */
    private $api;

    /**
     * @param callable $scrub removes the App's secrets from a text
     * @param object|null $db PDO (default HBRegistry::db())
     * @param object|null $api ApiWrapper (default new ApiWrapper())
     */
    public function __construct($scrub, $db = null, $api = null)
    {
        $this->scrub = $scrub;
        $this->db = cloudpe_db::of($db);
        $this->api = $api;
    }

    /**
     * Who runs the current action: ['login' => staff login or "Automation", 'manual' => bool].
     *
     * @return array{login: string, manual: bool}
     */
    public static function actor()
    {
        $admin = function_exists('hbm_logged_admin') ? hbm_logged_admin() : null;
        if (!is_array($admin) || !isset($admin['id']) || (string) $admin['id'] === '' || (string) $admin['id'] === '0') {
            return array('login' => self::AUTOMATION, 'manual' => false);
        }
        foreach (array('username', 'email', 'firstname') as $key) {
            if (isset($admin[$key]) && is_scalar($admin[$key]) && trim((string) $admin[$key]) !== '') {
                return array('login' => trim((string) $admin[$key]), 'manual' => true);
            }
        }
        return array('login' => 'staff #' . $admin['id'], 'manual' => true);
    }

    /**
     * Writes one row to the account's log.
     *
     * @param string|int $accountId
     * @param string $action what happened, e.g. "CloudPe sync: status from CloudPe"
     * @param string $event short key, e.g. "CloudPeSync"
     * @param bool $ok the row's result
     * @param array[] $changes each ['name' => ..., 'from' => ..., 'to' => ...]
     * @param string $error why it failed ('' when it did not)
     * @param array|null $actor as actor() returns it (null: the current one)
     * @return string|null null, or why the row could not be written (then it went to
     *         hbm_log_account or the system log instead)
     */
    public function account($accountId, $action, $event, $ok, array $changes = array(), $error = '', $actor = null)
    {
        $actor = $actor ?: self::actor();
        $data = array();
        foreach ($changes as $change) {
            $data[] = array(
                'name' => $this->clean($change['name']),
                'from' => $this->clean(isset($change['from']) ? $change['from'] : ''),
                'to' => $this->clean(isset($change['to']) ? $change['to'] : ''),
            );
        }
        $row = array(
            'date' => date('Y-m-d H:i:s'),
            'account_id' => (string) $accountId,
            'admin_login' => $actor['login'],
            'module' => self::MODULE,
            'manual' => $actor['manual'] ? '1' : '0',
            'action' => $this->clean($action),
            'change' => serialize(array('serialized' => '1', 'data' => $data)),
            'result' => $ok ? '1' : '0',
            'error' => $this->clean($error),
            'event' => (string) $event,
        );
        $problem = $this->db->insert('hb_account_logs', $row);
        if ($problem === null) {
            return null;
        }
        $text = $row['action'] . ($row['error'] !== '' ? ': ' . $row['error'] : '') . self::changeText($data);
        if (function_exists('hbm_log_account')) {
            hbm_log_account($text, $accountId);
        } else {
            hbm_log_error("account #{$accountId}: {$text}", cloudpe::LOG_TAG);
        }
        hbm_log_error("account #{$accountId}: the account log (hb_account_logs) refused the row: " . $this->clean($problem), cloudpe::LOG_TAG);
        return $problem;
    }

    /**
     * Tells the staff about an account that needs them: an internal ticket on the client, or, if
     * HostBill refuses it, an admin note on the account. Always a system-log error too.
     *
     * @return string where it went ("internal ticket #712", "admin note on the account", or
     *         "the system log only" when both were refused)
     */
    public function notifyStaff($clientId, $accountId, $subject, $body)
    {
        $subject = $this->clean($subject);
        $body = $this->clean($body);
        hbm_log_error("account #{$accountId}: {$subject}: {$body}", cloudpe::LOG_TAG);
        $reasons = array();
        if ((string) $clientId !== '' && (string) $clientId !== '0') {
            $reply = $this->api()->addTicket(array(
                'client_id' => (string) $clientId, 'subject' => $subject, 'body' => $body,
                'isinternal' => '1', 'priority' => '2', 'request_type' => 'Incident',
            ));
            if (is_array($reply) && !empty($reply['success'])) {
                return 'internal ticket' . (isset($reply['ticket_id']) ? ' #' . $reply['ticket_id'] : '');
            }
            $reasons[] = 'addTicket: ' . self::apiError($reply);
        }
        $reply = $this->api()->addAdminNote(array('item_type' => 'account', 'item_id' => (string) $accountId, 'note' => "{$subject}: {$body}"));
        if (is_array($reply) && !empty($reply['success'])) {
            return 'admin note on the account';
        }
        $reasons[] = 'addAdminNote: ' . self::apiError($reply);
        hbm_log_error("account #{$accountId}: HostBill refused to notify the staff (" . $this->clean(implode('; ', $reasons)) . ')', cloudpe::LOG_TAG);
        return 'the system log only';
    }

    /**
     * One call of the opt-in call log: "call: getaccounts {params} -> HTTP 200 in 23 ms, result 0:
     * reply". Parameters are masked by key (see maskByKey), the reply is cut to REPLY_CHARS, and
     * everything is scrubbed of the App's secrets by value as well.
     */
    public function call(array $call)
    {
        hbm_log_system($this->clean(self::describeCall($call)), cloudpe::LOG_TAG);
    }

    /** Characters of a reply the call log keeps. */
    const REPLY_CHARS = 500;
    /** What a masked value becomes, whatever its length. */
    const MASK = '********';

    /** The call-log line for `$call` (not yet scrubbed by value). */
    public static function describeCall(array $call)
    {
        $method = isset($call['method']) && is_scalar($call['method']) ? (string) $call['method'] : '?';
        $params = isset($call['params']) && is_array($call['params']) ? self::maskByKey($call['params']) : array();
        $line = self::CALL_PREFIX . $method . ' ' . json_encode((object) $params, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
        $line .= ' -> ' . (isset($call['http_status']) && is_scalar($call['http_status']) ? 'HTTP ' . $call['http_status'] : 'no HTTP status');
        if (isset($call['duration_ms']) && is_numeric($call['duration_ms'])) {
            $line .= ' in ' . (int) $call['duration_ms'] . ' ms';
        }
        if (isset($call['result']) && is_scalar($call['result'])) {
            $line .= ', result ' . $call['result'];
        }
        if (isset($call['reply']) && is_string($call['reply']) && $call['reply'] !== '') {
            $line .= ': ' . self::trimReply($call['reply']);
        }
        return $line;
    }

    /**
     * `$params` with the value of every key that names a secret (session, password, token,
     * secret, key, hash, signature) replaced by MASK: by key, so a secret the module does not
     * know by value is still hidden, and to a fixed length, so its length is not told.
     */
    public static function maskByKey(array $params)
    {
        $masked = array();
        foreach ($params as $key => $value) {
            if (self::isSecretKey((string) $key)) {
                $masked[$key] = self::MASK;
            } elseif (is_array($value)) {
                $masked[$key] = self::maskByKey($value);
            } else {
                $masked[$key] = $value;
            }
        }
        return $masked;
    }

    /** Whether a parameter named `$key` holds a secret. */
    public static function isSecretKey($key)
    {
        return (bool) preg_match('/session|passw|token|secret|key|hash|sign|auth|cookie/i', $key);
    }

    /** A reply as the call log keeps it: JSON masked by key, then cut to REPLY_CHARS. */
    public static function trimReply($reply)
    {
        $decoded = json_decode($reply, true);
        if (is_array($decoded)) {
            $reply = json_encode(self::maskByKey($decoded), JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
        }
        $reply = preg_replace('/\s+/', ' ', (string) $reply);
        return strlen($reply) > self::REPLY_CHARS ? substr($reply, 0, self::REPLY_CHARS) . '...' : $reply;
    }

    /** The changes as text: " [status: Active -> Suspended; CloudPe uid: 12]". */
    public static function changeText(array $data)
    {
        $parts = array();
        foreach ($data as $change) {
            $parts[] = $change['from'] === '' ? "{$change['name']}: {$change['to']}" : "{$change['name']}: {$change['from']} -> {$change['to']}";
        }
        return $parts ? ' [' . implode('; ', $parts) . ']' : '';
    }

    /**
     * CloudPe facts (`cloudpe-uid` => "12", ...) as account-log changes with no "from", HTML-escaped
     * (CloudPe's texts, for the account's log page: see class.cloudpe_text.php).
     */
    public static function factChanges($facts)
    {
        $changes = array();
        foreach (is_array($facts) ? $facts : array() as $name => $value) {
            if (is_scalar($value)) {
                $changes[] = array('name' => cloudpe_text::html((string) $name), 'from' => '', 'to' => cloudpe_text::html((string) $value));
            }
        }
        return $changes;
    }

    /** `$text` as a scrubbed string. */
    private function clean($text)
    {
        return (string) call_user_func($this->scrub, is_scalar($text) ? (string) $text : json_encode($text));
    }

    private function api()
    {
        if ($this->api === null) {
            $this->api = new ApiWrapper();
        }
        return $this->api;
    }

    private static function apiError($reply)
    {
        if (is_array($reply) && isset($reply['error'])) {
            return is_array($reply['error']) ? implode('; ', array_map('strval', $reply['error'])) : (string) $reply['error'];
        }
        return 'no usable reply';
    }
}
