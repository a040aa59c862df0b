<?php

/**
 * Test doubles of HostBill's encoded core, faithful to shared/docs/hostbill-module.md: the
 * HostingModule base class, HBController, the in-process ApiWrapper and the hbm_log_* functions.
 * State is static because modules create `new ApiWrapper()` wherever they need it.
 */

abstract class HostingModule
{
    /** @var array the account row HostBill fills before an action */
    public $account_details = array();
    /** @var array the client row (reliable only in Create) */
    public $client_data = array();
    /** @var string[] */
    private $hbErrors = array();
    /** @var string[] */
    private $hbInfos = array();

    public function addError($error)
    {
        $this->hbErrors[] = $error;
    }

    public function addInfo($info)
    {
        $this->hbInfos[] = $info;
    }

    /** Test helper: what addError received. */
    public function recordedErrors()
    {
        return $this->hbErrors;
    }

    /** Test helper: what addInfo received. */
    public function recordedInfos()
    {
        return $this->hbInfos;
    }
}

abstract class HBController
{
}

/** HostBill's in-process Admin API: same params and replies as admin/api.php, no HTTP. */
class ApiWrapper
{
    /** @var array[] account rows (id, client_id, server_id, status, ...) */
    public static $accounts = array();
    /** @var array[] client id => client row, custom fields keyed by code */
    public static $clients = array();
    /** @var int accounts per page of getAccounts */
    public static $perPage = 25;
    /** @var array[] every call: [method, params] */
    public static $calls = array();
    /** @var array[] params of every editAccountDetails */
    public static $edits = array();

    public static function reset()
    {
        self::$accounts = array();
        self::$clients = array();
        self::$perPage = 25;
        self::$calls = array();
        self::$edits = array();
    }

    /** @return int calls of `$method` */
    public static function count($method)
    {
        return count(array_filter(self::$calls, function ($c) use ($method) { return $c[0] === $method; }));
    }

    public function getAccounts($params)
    {
        self::$calls[] = array('getAccounts', $params);
        $filter = isset($params['filter']) ? $params['filter'] : array();
        $rows = array_values(array_filter(self::$accounts, function ($a) use ($filter) {
            foreach ($filter as $key => $value) {
                if (!isset($a[$key]) || (string) $a[$key] !== (string) $value) {
                    return false;
                }
            }
            return true;
        }));
        $page = isset($params['page']) ? (int) $params['page'] : 0;
        $pages = max(1, (int) ceil(count($rows) / self::$perPage));
        return array(
            'success' => true,
            'call' => 'getAccounts',
            'accounts' => array_slice($rows, $page * self::$perPage, self::$perPage),
            'sorter' => array('perpage' => self::$perPage, 'totalpages' => $pages, 'sorterpage' => $page, 'sorterrecords' => count($rows)),
        );
    }

    public function getClientDetails($params)
    {
        self::$calls[] = array('getClientDetails', $params);
        $id = $params['id'];
        if (!isset(self::$clients[$id])) {
            return array('success' => false, 'error' => array('Client not found'));
        }
        return array('success' => true, 'call' => 'getClientDetails', 'client' => self::$clients[$id] + array('id' => $id));
    }

    public function editAccountDetails($params)
    {
        self::$calls[] = array('editAccountDetails', $params);
        self::$edits[] = $params;
        return array('success' => true, 'call' => 'editAccountDetails');
    }
}

/** What the hbm_log_* functions received: [kind, message, tag]. */
class HbLog
{
    public static $lines = array();

    /** Test helper: every message, one per line. */
    public static function text()
    {
        return implode("\n", array_map(function ($l) { return $l[0] . ' ' . $l[2] . ': ' . $l[1]; }, self::$lines));
    }
}

function hbm_log_system($message, $tag)
{
    HbLog::$lines[] = array('system', $message, $tag);
}

function hbm_log_error($message, $tag)
{
    HbLog::$lines[] = array('error', $message, $tag);
}
