<?php

/**
 * What the module does with the lifecycle operations of contract 2.4.0 (docs/lifecycle.md) on
 * HostBill's side: the request Create and ChangePackage send (the client's email, the product's
 * options), the link a Create reports (the uid kept in the account's details, the client's id
 * field set where it is empty, an account-log row), the outcome of a package change, the group
 * list of the "CloudPe group" product option and the capability lines of Test Connection.
 *
 * Every CloudPe text it hands on goes through the module's reportText (scrubbed, HTML-escaped
 * once); the password a provisioning Create generates never reaches PHP (the report carries no
 * such member, and nothing here would log it).
 */
class cloudpe_lifecycle
{
    /** How a link came about (the report's `link.source`). */
    const SOURCES = array('existing', 'by-email', 'provisioned');
    /** The capability states the host reports, as the admin reads them. */
    const STATES = array('allowed' => 'allowed', 'denied' => 'DENIED', 'unknown' => 'unknown on this platform', 'not-probed' => 'not probed');
    /** Characters a group name may not have to be offered as a choice (it is a form value HostBill may print unescaped). */
    const UNSAFE_CHOICE = '/[<>"\'&\x00-\x1f\x7f]/';

    /** @var cloudpe */
    private $module;
    /** @var cloudpe_apps */
    private $apps;

    /**
     * @param cloudpe $module the connected module, on the account of the action
     * @param cloudpe_apps|null $apps where HostBill's own calls are made (default: a new one)
     */
    public function __construct(cloudpe $module, $apps = null)
    {
        $this->module = $module;
        $this->apps = $apps ?: new cloudpe_apps();
    }

    /**
     * The request of `create` and `change-package`: the App, the account row, and what linking
     * and provisioning need besides it: the client's email (left out when HostBill has none) and
     * the product's module options by name (empty ones left out).
     */
    public function request(array $account)
    {
        $request = array('app' => $this->module->app(), 'account' => $account);
        $email = $this->module->clientEmail($account['client_id']);
        if ($email !== '') {
            $request['client_email'] = $email;
        }
        // HostBill loads the product's options before its own Create; the cron's retry has only
        // the account row, so they are read from the product then.
        $product = $this->module->productOptions() ?: $this->module->storedProductOptions();
        $request['product'] = (object) $product;
        return $request;
    }

    /**
     * The report's `link` as ['uid' => string, 'source' => string], null when it has none (a
     * module older than 2.4.0 answers Create without one).
     *
     * @throws cloudpe_host_error when it has one that is not a link
     */
    public static function readLink(array $report)
    {
        if (!array_key_exists('link', $report) || $report['link'] === null) {
            return null;
        }
        $link = $report['link'];
        $uid = is_array($link) && isset($link['remote_id']) ? $link['remote_id'] : null;
        $uid = (is_int($uid) && $uid > 0) || (is_string($uid) && ctype_digit($uid)) ? ltrim((string) $uid, '0') : '';
        $source = is_array($link) && isset($link['source']) && is_string($link['source']) ? $link['source'] : '';
        if ($uid === '' || !in_array($source, self::SOURCES, true)) {
            throw new cloudpe_host_error('the module host reported a link that is not one (' . substr(json_encode($link), 0, 120) . '): expected {"remote_id": a CloudPe user id, "source": ' . implode(' | ', self::SOURCES) . '}');
        }
        return array('uid' => $uid, 'source' => $source);
    }

    /**
     * After a successful Create: stores the link the report names, if any. The uid goes to the
     * account's details (`cloudpe_uid`, saved by HostBill with the account); the client's id field
     * is set when it is empty, left alone (and the difference logged) when it holds another id;
     * an account-log row says what was linked and how. Returns false, with the error added, when
     * HostBill did not store the id in the client's field (the account could not be suspended by
     * it): Create can be run again, it finds the same user.
     */
    public function linked(array $report, array $account)
    {
        $link = self::readLink($report);
        if ($link === null) {
            return true;
        }
        $uid = $link['uid'];
        $this->module->showReportFacts(isset($report['outcome']['facts']) ? $report['outcome']['facts'] : array());
        $this->module->setDetail('cloudpe_uid', $uid);
        $clientId = (string) $account['client_id'];
        $email = $this->module->clientEmail($clientId);
        $how = self::how($link['source'], $email);
        $code = $this->module->idFieldCode();
        $changes = array(array('name' => 'CloudPe user id', 'from' => '', 'to' => $uid));
        $audit = $this->module->audit();

        $current = $this->module->freshClientField($clientId);
        if ($current === '') {
            $refused = $this->apps->setClientField($clientId, $code, $uid);
            if ($refused !== null) {
                $message = "CloudPe module: account #{$account['id']} is linked to CloudPe user {$uid} ({$how}), but HostBill did not store {$uid} in client #{$clientId}'s field `{$code}`: {$refused}. Set the field to {$uid} on the client's profile, or run Create again (it finds the same user)";
                $this->module->failWith($message);
                $audit->account($account['id'], "CloudPe: linked to CloudPe user {$uid} ({$how}); client field {$code} NOT set", 'CloudPeLink', false, $changes, $message);
                return false;
            }
            $this->module->rememberClientField($clientId, $uid);
            $changes[] = array('name' => "client field {$code}", 'from' => '', 'to' => $uid);
            $this->module->addInfo($this->module->scrub("CloudPe user {$uid} linked to account #{$account['id']} ({$how}); client #{$clientId}'s field {$code} set to {$uid}"));
        } elseif ($current === $uid) {
            $this->module->addInfo($this->module->scrub("CloudPe user {$uid} linked to account #{$account['id']} ({$how})"));
        } else {
            // Create looked the user up by email because the field was empty: it has been set
            // meanwhile, by someone who knows better than an email match.
            $note = "client #{$clientId}'s field {$code} now holds " . cloudpe_text::html($current) . ", not {$uid}: left as it is";
            hbm_log_error($this->module->scrub("create of account #{$account['id']}: linked to CloudPe user {$uid} ({$how}), but {$note}"), cloudpe::LOG_TAG);
            $this->module->addInfo($this->module->scrub("Warning: CloudPe user {$uid} linked to account #{$account['id']} ({$how}), but {$note}; the account's actions use the field's user: check which one the client should have"));
            $changes[] = array('name' => "client field {$code}", 'from' => cloudpe_text::html($current), 'to' => cloudpe_text::html($current) . ' (kept)');
        }
        $audit->account($account['id'], "CloudPe: linked to CloudPe user {$uid} ({$how})", 'CloudPeLink', true, $changes);
        return true;
    }

    /** "by email ann@x.io", "provisioned", "existing". */
    public static function how($source, $email)
    {
        if ($source === 'by-email') {
            return 'by email ' . cloudpe_text::html($email !== '' ? $email : 'of the client');
        }
        return $source;
    }

    /**
     * After a successful ChangePackage: the CloudPe group shown in the account's details, an
     * account-log row with the group change (the outcome's facts, and the product's group).
     */
    public function packageChanged(array $report, array $account)
    {
        $facts = isset($report['outcome']['facts']) && is_array($report['outcome']['facts']) ? $report['outcome']['facts'] : array();
        $this->module->showReportFacts($facts);
        $options = $this->module->productOptions();
        $group = isset($options[cloudpe::OPTION_GROUP]) ? $options[cloudpe::OPTION_GROUP] : '';
        $changes = array(array('name' => 'product ' . cloudpe::OPTION_GROUP, 'from' => '', 'to' => $group === '' ? '(none)' : cloudpe_text::html($group)));
        $this->module->audit()->account($account['id'], 'CloudPe: package changed', 'CloudPeChangePackage', true, array_merge($changes, cloudpe_audit::factChanges($facts)));
        return true;
    }

    /**
     * What the admin reads for an `unsupported` error of `$operation`: the App's component is
     * older than the operation.
     */
    public static function unsupportedMessage($operation, $hostMessage)
    {
        $what = array('change-package' => 'ChangePackage (moving the CloudPe user to the product\'s CloudPe group)', 'option-choices' => 'The CloudPe group list');
        return 'CloudPe module: ' . (isset($what[$operation]) ? $what[$operation] : $operation) . ' needs CloudPe component 2.4.0 or later, and this App\'s component is older (' . $hostMessage . '): install a newer component (README, "Upgrading the module")';
    }

    /**
     * The choices of the "CloudPe group" option as HostBill's loadable wants them, `[[value,
     * label], ...]`: the report's `choices`, labels escaped; a value with a character that would
     * need escaping in a form (or a control character) is left out and logged, since it is stored
     * and sent back to CloudPe as it is.
     */
    public function choices(array $report)
    {
        $choices = array();
        $skipped = array();
        foreach (isset($report['choices']) && is_array($report['choices']) ? $report['choices'] : array() as $choice) {
            if (!is_array($choice) || !isset($choice['value']) || !is_scalar($choice['value']) || trim((string) $choice['value']) === '') {
                continue;
            }
            $value = (string) $choice['value'];
            if (preg_match(self::UNSAFE_CHOICE, $value)) {
                $skipped[] = $this->module->reportText($value);
                continue;
            }
            $label = isset($choice['label']) && is_scalar($choice['label']) && (string) $choice['label'] !== '' ? $choice['label'] : $value;
            $choices[] = array($value, $this->module->reportText($label));
        }
        if ($skipped) {
            hbm_log_error($this->module->scrub('option-choices: CloudPe groups left out of the list, their names have characters a form value may not (< > " \' &, control characters): ' . implode(', ', $skipped)), cloudpe::LOG_TAG);
        }
        return $choices;
    }

    /**
     * One line per capability of a connection test's report, e.g. "group list: allowed (getgroups
     * answered with 3 groups)", "set group: DENIED — add billing.Account.SetGroup to the token's API
     * list". Texts are the report's, through reportText.
     *
     * @return string[]
     */
    public function capabilityLines(array $report)
    {
        $lines = array();
        foreach (isset($report['capabilities']) && is_array($report['capabilities']) ? $report['capabilities'] : array() as $capability) {
            if (!is_array($capability) || !isset($capability['name'])) {
                continue;
            }
            $state = isset($capability['state']) && is_string($capability['state']) ? $capability['state'] : '';
            $label = isset(self::STATES[$state]) ? self::STATES[$state] : 'state ' . $this->module->reportText($state);
            $detail = isset($capability['detail']) ? $this->module->reportText($capability['detail']) : '';
            $name = $this->module->reportText($capability['name']);
            if ($state === 'denied') {
                $lines[] = "{$name}: {$label}" . ($detail !== '' ? " — {$detail}" : '');
            } else {
                $lines[] = "{$name}: {$label}" . ($detail !== '' ? " ({$detail})" : '');
            }
        }
        return $lines;
    }

    /**
     * The capabilities as one clause of the "what the module may do" summary: "on CloudPe the
     * token may: group list, set group; may not: create user", or null when none was probed.
     */
    public function capabilitySummary(array $report)
    {
        $may = array();
        $mayNot = array();
        foreach (isset($report['capabilities']) && is_array($report['capabilities']) ? $report['capabilities'] : array() as $capability) {
            if (!is_array($capability) || !isset($capability['name'], $capability['state'])) {
                continue;
            }
            if ($capability['state'] === 'allowed') {
                $may[] = $this->module->reportText($capability['name']);
            } elseif ($capability['state'] === 'denied') {
                $mayNot[] = $this->module->reportText($capability['name']);
            }
        }
        if (!$may && !$mayNot) {
            return null;
        }
        $parts = array();
        if ($may) {
            $parts[] = 'may: ' . implode(', ', $may);
        }
        if ($mayNot) {
            $parts[] = 'may not: ' . implode(', ', $mayNot);
        }
        return 'on CloudPe the token ' . implode('; ', $parts);
    }
}
