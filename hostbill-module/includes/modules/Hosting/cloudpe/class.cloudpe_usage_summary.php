<?php

require_once __DIR__ . '/class.cloudpe_db.php';
require_once __DIR__ . '/class.cloudpe_decimal.php';

/**
 * The usage import's figures on the account page (cloudpe::getSynchInfo): the end of the last
 * imported hour (the account's cursor) and the cost imported in HostBill's current billing period
 * (meteredGetUsage's values of the variable cloudpeCost).
 */
class cloudpe_usage_summary
{
    /**
     * The account's two figures, as text. Never throws.
     *
     * @return array{last: string, period: string}
     */
    public static function of($accountId, $api = null, $db = null)
    {
        $summary = array('last' => 'none yet', 'period' => 'unknown');
        try {
            $rows = cloudpe_db::of($db)->select('SELECT last_hour FROM `' . cloudpe_usage::CURSORS . '` WHERE account_id = :account', array(':account' => (string) $accountId));
            $last = $rows ? cloudpe_usage::fromSql($rows[0]['last_hour']) : null;
            if ($last !== null) {
                $summary['last'] = 'every hour before ' . gmdate('Y-m-d H:i', $last) . ' UTC';
            }
        } catch (\Throwable $e) {
            $summary['last'] = 'unknown (' . $e->getMessage() . ')';
        }
        $api = $api ?: new ApiWrapper();
        $reply = $api->meteredGetUsage(array('account_id' => (string) $accountId));
        if (!is_array($reply) || empty($reply['success'])) {
            $summary['period'] = 'unknown (meteredGetUsage: ' . cloudpe_usage::apiError($reply) . ')';
            return $summary;
        }
        $sum = '0';
        foreach (isset($reply['variables']) && is_array($reply['variables']) ? $reply['variables'] : array() as $variable) {
            if (!is_array($variable) || !isset($variable['variable_name']) || $variable['variable_name'] !== cloudpe_usage::VARIABLE) {
                continue;
            }
            foreach (isset($variable['values']) && is_array($variable['values']) ? $variable['values'] : array() as $value) {
                $charge = is_array($value) && isset($value['charge']) && is_scalar($value['charge']) ? (string) $value['charge'] : '';
                if (!cloudpe_decimal::isAmount($charge)) {
                    $summary['period'] = 'unknown (HostBill listed a charge that is not a decimal)';
                    return $summary;
                }
                $sum = cloudpe_decimal::add($sum, $charge);
            }
        }
        $summary['period'] = $sum . ' (' . cloudpe_usage::VARIABLE . ', HostBill\'s current billing period)';
        return $summary;
    }
}
