<?php

/**
 * The links the reconciliation proposes and the admin applies (docs/lifecycle.md, "Proposed
 * links"). The monthly reconciliation stores each App's proposals (account, client, CloudPe uid,
 * email) in the module's table `hb_cloudpe_link_proposals`, replacing that App's previous ones:
 * the stored proposals are exactly the ones its report lists. The admin action "Apply proposed
 * links" (cloudpe::applyProposedLinks) applies only stored proposals, each checked again at that
 * moment: the account still exists, on this App, for the same client, whose CloudPe id field is
 * still empty, and (when the admin names the pairs seen) the uid is the one listed. A proposal
 * that no longer holds is skipped with its reason and dropped; nothing is ever applied by the
 * cron.
 */
class cloudpe_links
{
    /** The module's table of proposed links. */
    const TABLE = 'hb_cloudpe_link_proposals';
    /** What the account's log says of an applied link. */
    const AUDIT_ACTION = 'CloudPe: linked by admin from the reconciliation\'s proposal';
    /** The account-log event of an applied link. */
    const AUDIT_EVENT = 'CloudPeLink';
    /** What stale() says of a proposal whose client's field already holds its uid. */
    const ALREADY_SET = 'already set to the proposed uid';

    /**
     * Creates the table (install() and upgrade() only: CREATE TABLE commits an open transaction,
     * see docs/hostbill.md "The module's own tables").
     *
     * @throws cloudpe_apps_error
     */
    public static function createTables($db = null)
    {
        cloudpe_db::of($db)->execute('CREATE TABLE IF NOT EXISTS `' . self::TABLE . '` ('
            . '`server_id` int(11) NOT NULL, '
            . '`account_id` int(11) NOT NULL, '
            . '`client_id` int(11) NOT NULL, '
            . '`uid` varchar(20) NOT NULL, '
            . '`email` varchar(255) NOT NULL, '
            . '`proposed_at` datetime NOT NULL, '
            . 'PRIMARY KEY (`server_id`, `account_id`)'
            . ') ENGINE=InnoDB DEFAULT CHARSET=utf8', array());
    }

    /**
     * Replaces App `$serverId`'s stored proposals with `$proposals` (each `account_id`,
     * `client_id`, `uid`, `email`), in one transaction.
     *
     * @throws cloudpe_apps_error when the database refuses (the table missing: the module not upgraded)
     */
    public static function store($serverId, array $proposals, $db = null)
    {
        $db = cloudpe_db::of($db);
        $now = gmdate('Y-m-d H:i:s');
        $db->transaction(function (cloudpe_db $db) use ($serverId, $proposals, $now) {
            $db->execute('DELETE FROM `' . self::TABLE . '` WHERE `server_id` = :server', array(':server' => (string) $serverId));
            foreach ($proposals as $p) {
                $db->execute(
                    'INSERT INTO `' . self::TABLE . '` (`server_id`, `account_id`, `client_id`, `uid`, `email`, `proposed_at`) VALUES (:server, :account, :client, :uid, :email, :at)',
                    array(':server' => (string) $serverId, ':account' => (string) $p['account_id'], ':client' => (string) $p['client_id'], ':uid' => (string) $p['uid'], ':email' => (string) $p['email'], ':at' => $now)
                );
            }
        });
    }

    /**
     * App `$serverId`'s stored proposals, by account id (each `account_id`, `client_id`, `uid`,
     * `email`, `proposed_at` as strings).
     *
     * @throws cloudpe_apps_error
     */
    public static function stored($serverId, $db = null)
    {
        $rows = cloudpe_db::of($db)->select('SELECT `account_id`, `client_id`, `uid`, `email`, `proposed_at` FROM `' . self::TABLE . '` WHERE `server_id` = :server ORDER BY `account_id`', array(':server' => (string) $serverId));
        $byAccount = array();
        foreach ($rows as $row) {
            $byAccount[$row['account_id']] = $row;
        }
        return $byAccount;
    }

    /**
     * Applies the stored proposals of `$module`'s App (only those of `$listed`, account id =>
     * uid, when given), each checked again first. Returns `applied` and `skipped` (account id =>
     * phrase) and `lines`, what the admin is told.
     *
     * @param cloudpe $module connected to the App
     * @param array|null $listed
     * @param object|null $api ApiWrapper
     * @param cloudpe_apps|null $apps
     * @return array{applied: array<string, string>, skipped: array<string, string>, lines: string[]}
     * @throws cloudpe_apps_error when it cannot run at all (no staff member, no table)
     */
    public static function apply(cloudpe $module, $listed = null, $api = null, $apps = null)
    {
        $actor = cloudpe_audit::actor();
        if (!$actor['manual']) {
            throw new cloudpe_apps_error('it is an admin\'s action and no staff member is logged in (HostBill\'s cron never applies a proposed link)');
        }
        $serverId = (string) $module->serverId();
        $api = $api ?: new ApiWrapper();
        $apps = $apps ?: new cloudpe_apps($api);
        $db = cloudpe_db::of();
        $stored = self::stored($serverId, $db);
        $code = $module->idFieldCode();
        $applied = array();
        $skipped = array();
        $todo = $stored;
        if ($listed !== null) {
            if (!is_array($listed)) {
                throw new cloudpe_apps_error('the proposals to apply must be a list of account id => CloudPe uid, as the reconciliation lists them');
            }
            $todo = array();
            foreach ($listed as $account => $uid) {
                $account = (string) $account;
                $uid = is_scalar($uid) ? trim((string) $uid) : '';
                if (!isset($stored[$account])) {
                    $skipped[$account] = "#{$account}: not among the links the App's last reconciliation proposes";
                } elseif ($stored[$account]['uid'] !== $uid) {
                    $skipped[$account] = "#{$account}: uid " . cloudpe_text::html($uid) . " is not the one the reconciliation lists for it ({$stored[$account]['uid']})";
                } else {
                    $todo[$account] = $stored[$account];
                }
            }
        }
        foreach ($todo as $account => $p) {
            $why = self::stale($p, $serverId, $code, $api);
            // The field already holds this very uid: an earlier apply set it and stopped before
            // its log entry and the proposal's removal. It is finished now, not skipped.
            $finished = $why === self::ALREADY_SET;
            if ($why !== null && !$finished) {
                $skipped[$account] = "#{$account}: {$why}";
                self::drop($serverId, $account, $db);
                continue;
            }
            $refused = $finished ? null : $apps->setClientField($p['client_id'], $code, $p['uid']);
            if ($refused !== null) {
                $skipped[$account] = "#{$account}: not linked: " . $module->scrub($refused);
                continue; // kept: the admin may apply it again once HostBill takes the field
            }
            $email = cloudpe_text::html($p['email']);
            $module->audit()->account($account, self::AUDIT_ACTION, self::AUDIT_EVENT, true, array(
                array('name' => "client #{$p['client_id']} field {$code}", 'from' => '', 'to' => $p['uid']),
                array('name' => 'CloudPe uid', 'from' => '', 'to' => $p['uid']),
                array('name' => 'CloudPe email', 'from' => '', 'to' => $email),
                array('name' => 'proposed by the reconciliation of', 'from' => '', 'to' => $p['proposed_at'] . ' UTC'),
            ), '', $actor);
            self::drop($serverId, $account, $db);
            $applied[$account] = "#{$account}: client #{$p['client_id']} linked to CloudPe uid {$p['uid']} ({$email})";
            hbm_log_system($module->scrub("apply proposed links App #{$serverId}: account #{$account}: client #{$p['client_id']} linked to CloudPe uid {$p['uid']} ({$email}) by {$actor['login']}"), cloudpe::LOG_TAG);
        }
        $lines = array();
        if (!$stored && $listed === null) {
            $lines[] = "Apply proposed links: App #{$serverId} has no proposed link (the monthly reconciliation stores them; it found none, or they were applied)";
        } else {
            $lines[] = sprintf('Apply proposed links: %d linked, %d skipped', count($applied), count($skipped));
        }
        foreach ($applied as $line) {
            $lines[] = "linked {$line}";
        }
        foreach ($skipped as $line) {
            $lines[] = "skipped {$line}";
        }
        return array('applied' => $applied, 'skipped' => $skipped, 'lines' => $lines);
    }

    /**
     * Why proposal `$p` no longer holds, or null: the account must still exist, on App
     * `$serverId`, for the same client, whose field `$code` is still empty (all read now);
     * ALREADY_SET when the field holds the proposed uid.
     */
    private static function stale(array $p, $serverId, $code, $api)
    {
        $reply = $api->getAccountDetails(array('id' => $p['account_id']));
        if (!is_array($reply) || empty($reply['success']) || !isset($reply['details']) || !is_array($reply['details'])) {
            return 'the account no longer exists (getAccountDetails: ' . self::apiError($reply) . ')';
        }
        $details = $reply['details'];
        if (!isset($details['server_id']) || (string) $details['server_id'] !== $serverId) {
            return 'the account is no longer on this App (now on App #' . (isset($details['server_id']) ? (string) $details['server_id'] : '?') . ')';
        }
        if (!isset($details['client_id']) || (string) $details['client_id'] !== $p['client_id']) {
            return "the account no longer belongs to client #{$p['client_id']} (now client #" . (isset($details['client_id']) ? (string) $details['client_id'] : '?') . ')';
        }
        $client = $api->getClientDetails(array('id' => $p['client_id']));
        if (!is_array($client) || empty($client['success']) || !isset($client['client']) || !is_array($client['client'])) {
            return "client #{$p['client_id']} no longer exists (getClientDetails: " . self::apiError($client) . ')';
        }
        $now = isset($client['client'][$code]) && is_scalar($client['client'][$code]) ? trim((string) $client['client'][$code]) : '';
        if ($now === $p['uid']) {
            return self::ALREADY_SET;
        }
        if ($now !== '') {
            return "client #{$p['client_id']}'s CloudPe id field ({$code}) was set meanwhile (to " . cloudpe_text::html($now) . '): nothing changed';
        }
        return null;
    }

    /** Removes one stored proposal (applied, or no longer holding). */
    private static function drop($serverId, $account, cloudpe_db $db)
    {
        $db->execute('DELETE FROM `' . self::TABLE . '` WHERE `server_id` = :server AND `account_id` = :account', array(':server' => (string) $serverId, ':account' => (string) $account));
    }

    private static function apiError($reply)
    {
        if (is_array($reply) && isset($reply['error'])) {
            return is_array($reply['error']) ? implode('; ', array_map('strval', $reply['error'])) : (string) $reply['error'];
        }
        return 'no usable reply';
    }
}
