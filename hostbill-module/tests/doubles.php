<?php

require_once __DIR__ . '/database.php';

/**
 * Test doubles of HostBill's encoded core, written from public HostBill modules and HostBill's
 * public API reference, not from this module (see docs/hostbill.md). Each double
 * names where its behaviour comes from. State is static because modules create `new ApiWrapper()`
 * wherever they need it; HostBillDoubles::reset() clears it all.
 *
 * Conventions kept on purpose:
 *  - App rows have only the columns of hb_servers (HostBill install.sql), every value a string,
 *    `custom` serialized as HostBill stores it; there is no field3/field4/field5;
 *  - a controller gets an UNCONNECTED module (no public controller relies on a connected one);
 *  - Admin API replies carry strings, as admin/api.php's JSON does.
 */

/**
 * HostingModule. addError/addInfo and the account_details/client_data properties: HostBill's
 * devkit (tallship/oop_devkit, includes/modules/Hosting/advancedexample/class.advancedexample.php).
 * CONNECTION_FIELD_* constants: used by leodlsrt/wisp_hostbill class.wispgg.php and
 * hitechcloud-vietnam/webnic_hostbill webnic_ssl/class.webnic_ssl.php; CONNECTION_FIELD_CUSTOM with
 * `'Name' => ['type' => ..., 'default' => ..., 'description' => ...]` by HostBill's Tino reseller
 * module (class.tino.php), which reads the value back as `$connect['custom']['Name']`. Their real
 * values are encoded; here they are the devkit's key names.
 */
abstract class HostingModule
{
    const CONNECTION_FIELD_HOSTNAME = 'hostname';
    const CONNECTION_FIELD_IPADDRESS = 'ip';
    const CONNECTION_FIELD_MAXACCOUNTS = 'maxaccounts';
    const CONNECTION_FIELD_STATUSURL = 'status_url';
    const CONNECTION_FIELD_USERNAME = 'username';
    const CONNECTION_FIELD_PASSWORD = 'password';
    const CONNECTION_FIELD_INPUT1 = 'field1';
    const CONNECTION_FIELD_INPUT2 = 'field2';
    const CONNECTION_FIELD_CHECKBOX = 'ssl';
    const CONNECTION_FIELD_TEXTAREA = 'textarea';
    const CONNECTION_FIELD_NAMESERVERS = 'nameservers';
    const CONNECTION_FIELD_CUSTOM = 'custom';

    /**
     * @var array the account row HostBill fills before an action. Protected: HostBill's base class
     * is encoded and public code never writes it; callers hand the account over with setAccount().
     */
    protected $account_details = array();
    /** @var array the client row (reliable only in Create) */
    public $client_data = array();
    /** @var string[] */
    private $hbErrors = array();
    /** @var string[] */
    private $hbInfos = array();

    /**
     * Hands the module the account row (hb_accounts, strings) before an action, as public code that
     * runs a module outside HostBill's own flow does: `$module->connect($server);
     * $module->setAccount($account);` (hitechcloud-vietnam/webnic_hostbill
     * release/hostbill/includes/modules/Hosting/webnic_ssl/admin/class.webnic_ssl_controller.php
     * setupModule; HostBill's own includes/types/class.vmware5type.php, as shipped in
     * clemenclay/speednova, `_setVM`, before calling the module's Start()).
     */
    public function setAccount($account)
    {
        $this->account_details = $account;
    }

    public function addError($error)
    {
        $this->hbErrors[] = $error;
    }

    public function addInfo($info)
    {
        $this->hbInfos[] = $info;
    }

    /**
     * Test helper: loads the product's configuration into the module's `$options` values, as
     * HostBill does before Create, and before ChangePackage with the NEW package's (the devkit's
     * advancedexample: "$options variable is loaded with new package configuration"; it and
     * HostBill's vmware5 module read `$this->options[<key>]['value']`). `$values` is keyed by the
     * option's key; a key the module does not declare is a test error.
     */
    public function loadProductOptions(array $values)
    {
        foreach ($values as $key => $value) {
            if (!isset($this->options[$key])) {
                throw new LogicException("the module declares no product option {$key}");
            }
            $this->options[$key]['value'] = $value;
        }
    }

    /**
     * Test helper: the account's details as HostBill saves them after Create: each declared
     * detail's `value` (what Create wrote to `$this->details[<key>]['value']` is saved with the
     * account: the devkit's advancedexample stores the remote client id so; HostBill's vmware5
     * module: "Modifying $details array values in Create method will update database values").
     */
    public function savedDetails()
    {
        $saved = array();
        foreach ($this->details as $key => $detail) {
            $saved[$key] = isset($detail['value']) ? $detail['value'] : null;
        }
        return $saved;
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

    /** Test helper: a declared protected property (what HostBill reads, e.g. $serverFields). */
    public function declared($property)
    {
        return $this->$property;
    }
}

/** HBController: `var $module` set by HostBill (wisp_hostbill admin/class.wispgg_controller.php). */
abstract class HBController
{
}

/**
 * HBLoader::LoadModel('Servers')->getServerDetails($id): how public controllers get the App record
 * they pass to connect() (webnic_ssl/admin/class.webnic_ssl_controller.php,
 * wisp_hostbill admin/class.wispgg_controller.php).
 */
class HBLoader
{
    public static function LoadModel($name)
    {
        if ($name === 'Servers') {
            return new HbServersModel();
        }
        throw new LogicException("the doubles have no HostBill model {$name}");
    }
}

/**
 * The Servers model over the hb_servers rows below. getServerDetails hands `custom` back
 * unserialized (HostBill hands modules `$connect['custom']['Name']`, see the Tino module);
 * `$rawCustom` makes it hand the column as stored, the other shape the module must accept.
 */
class HbServersModel
{
    /** @var bool */
    public static $rawCustom = false;

    /**
     * findServersBy('module', $name): the hb_servers rows of the Apps of module `$name`, as
     * ModulesGarden's EasyDCIM cron controller lists its Apps (`findServersBy('module',
     * 'easydcim')`); other fields are not needed by the module.
     */
    public function findServersBy($field, $value)
    {
        if ($field !== 'module') {
            throw new LogicException("the doubles' findServersBy knows only 'module', not {$field}");
        }
        $rows = array();
        foreach (HbApps::$rows as $row) {
            if (strtolower(HbApps::$groups[$row['group_id']]['modulename']) === strtolower((string) $value)) {
                $rows[] = $row;
            }
        }
        return $rows;
    }

    public function getServerDetails($id)
    {
        if (!isset(HbApps::$rows[(string) $id])) {
            return false;
        }
        $row = HbApps::$rows[(string) $id];
        if (!self::$rawCustom) {
            $custom = @unserialize($row['custom'], array('allowed_classes' => false));
            $row['custom'] = is_array($custom) ? $custom : array();
        }
        return $row;
    }
}

/**
 * The Apps: hb_servers rows (columns of HostBill's install/install.sql, as in netway-devops/space)
 * and App groups, each tied to a module (getAppGroups' `module` id and `modulename`).
 */
class HbApps
{
    /** @var array[] id => hb_servers row */
    public static $rows = array();
    /** @var array[] group id => ['id', 'name', 'module', 'modulename'] */
    public static $groups = array();

    /**
     * Adds an App of module `$module` (group per module) and returns its row.
     *
     * @param array $fields hb_servers columns to set
     * @param array|null $custom the custom settings, stored serialized (null: empty column)
     */
    public static function add($id, $name, array $fields, $custom = null, $module = 'CloudPe', $moduleId = '7')
    {
        $groupId = null;
        foreach (self::$groups as $group) {
            if ($group['modulename'] === $module) {
                $groupId = $group['id'];
            }
        }
        if ($groupId === null) {
            $groupId = (string) (count(self::$groups) + 1);
            self::$groups[$groupId] = array('id' => $groupId, 'name' => $module, 'module' => (string) $moduleId, 'modulename' => $module);
        }
        $row = array(
            'id' => (string) $id, 'group_id' => $groupId, 'default' => '0', 'name' => (string) $name,
            'username' => '', 'password' => '', 'ip' => '', 'host' => '', 'status_url' => '',
            'ns1' => '', 'ns2' => '', 'ns3' => '', 'ns4' => '', 'ip1' => '', 'ip2' => '', 'ip3' => '', 'ip4' => '',
            'max_accounts' => '0', 'default_module' => (string) $moduleId, 'hash' => '', 'secure' => '1', 'enable' => '1',
            'field1' => '', 'field2' => '', 'custom' => $custom === null ? '' : serialize($custom), 'monthly_cost' => '0.00',
        );
        foreach ($fields as $column => $value) {
            if (!array_key_exists($column, $row)) {
                throw new LogicException("hb_servers has no column {$column}");
            }
            $row[$column] = (string) $value;
        }
        return self::$rows[(string) $id] = $row;
    }
}

/**
 * HostBill's in-process Admin API: same params and replies as admin/api.php, no HTTP. Calls and
 * replies from HostBill's API reference (api2.hostbillapp.com): getAccounts (filter[server_id],
 * filter[status], page; reply `accounts` + `sorter`), getClientDetails (`client`, custom fields by
 * code), editAccountDetails, getAppGroups, getAppServers (group). Pages are numbered from 0, as
 * public code reading `sorter.totalpages` counts them.
 */
class ApiWrapper
{
    /** @var array[] account rows (id, client_id, server_id, status, ...), all strings */
    public static $accounts = array();
    /** @var array[] client id => client row, custom fields keyed by code */
    public static $clients = array();
    /** @var int accounts per page of getAccounts */
    public static $perPage = 25;
    /** @var bool an older HostBill that ignores filter[status] */
    public static $ignoreStatusFilter = false;
    /** @var array account id => error text: editAccountDetails refuses that account */
    public static $refuse = array();
    /** @var array[] every call: [method, params] */
    public static $calls = array();
    /** @var string[] codes of the client custom fields HostBill has (Clients → Registration fields) */
    public static $clientFieldCodes = array('cloudpeid', 'cpid');
    /** @var string|null setClientDetails refuses with this error */
    public static $refuseClientEdits = null;
    /** @var array[] params of every accepted editAccountDetails */
    public static $edits = array();
    /** @var array[] params of every accepted addTicket */
    public static $tickets = array();
    /** @var array[] params of every accepted addAdminNote */
    public static $notes = array();
    /** @var string|null addTicket refuses with this error */
    public static $refuseTickets = null;
    /** @var array<string, string> ticket id => its notes (addTicketNotes) */
    public static $ticketNotes = array();
    /** @var array[] account id => the details its module's Create left, as HostBill saves them with the account */
    public static $savedDetails = array();
    /** @var array[] [call, account id, the module's answer] of every accountCreate/Suspend/Unsuspend */
    public static $moduleActions = array();
    /** @var array<string, array[]> product id => its metered variables (meteredGetVariables' rows) */
    public static $meteredVariables = array();
    /** @var string|null meteredAddUsage refuses with this error */
    public static $meteredRefuse = null;
    /** @var string|null meteredGetUsage lists only values dated at or after this (the billing period's start) */
    public static $meteredPeriodStart = null;

    /** @return int calls of `$method` */
    public static function count($method)
    {
        return count(self::calls($method));
    }

    /** @return array[] params of every call of `$method` */
    public static function calls($method)
    {
        $found = array();
        foreach (self::$calls as $call) {
            if ($call[0] === $method) {
                $found[] = $call[1];
            }
        }
        return $found;
    }

    public function getAccounts($params)
    {
        self::$calls[] = array('getAccounts', $params);
        $filter = isset($params['filter']) ? $params['filter'] : array();
        if (self::$ignoreStatusFilter) {
            unset($filter['status']);
        }
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
        $strings = array();
        foreach (array_slice($rows, $page * self::$perPage, self::$perPage) as $row) {
            $strings[] = array_map('strval', $row);
        }
        return array(
            'success' => true,
            'call' => 'getAccounts',
            'server_time' => (string) time(),
            'accounts' => $strings,
            'sorter' => array('perpage' => (string) self::$perPage, 'totalpages' => (string) $pages, 'sorterpage' => (string) $page, 'sorterrecords' => (string) count($rows)),
        );
    }

    public function getClientDetails($params)
    {
        self::$calls[] = array('getClientDetails', $params);
        $id = (string) $params['id'];
        if (!isset(self::$clients[$id])) {
            return array('success' => false, 'error' => array('Client not found'));
        }
        return array('success' => true, 'call' => 'getClientDetails', 'client' => array_map('strval', self::$clients[$id] + array('id' => $id)));
    }

    /**
     * setClientDetails (`id` and the fields to change, a custom field by its code): the Admin
     * API's client update, listed in HostBill's API reference beside getClientDetails; fields are
     * named by their codes as addClient documents them ("field: Any other client registration
     * field variable", api2.hostbillapp.com/clients/addClient.html). A code that is no field of
     * HostBill's (`$clientFieldCodes`, plus the client row's own columns) is ignored, as an API
     * taking free-form field names would; `$refuseClientEdits` makes it fail. That it takes custom
     * fields so is an inference (cloudpe_apps), which the module checks by reading the field back.
     */
    public function setClientDetails($params)
    {
        self::$calls[] = array('setClientDetails', $params);
        if (self::$refuseClientEdits !== null) {
            return array('success' => false, 'error' => array(self::$refuseClientEdits));
        }
        $id = isset($params['id']) ? (string) $params['id'] : '';
        if (!isset(self::$clients[$id])) {
            return array('success' => false, 'error' => array('Client not found'));
        }
        foreach ($params as $field => $value) {
            if ($field !== 'id' && (in_array($field, self::$clientFieldCodes, true) || in_array($field, array('email', 'firstname', 'lastname'), true))) {
                self::$clients[$id][$field] = (string) $value;
            }
        }
        return array('success' => true, 'call' => 'setClientDetails', 'info' => array('Client details updated'));
    }

    public function editAccountDetails($params)
    {
        self::$calls[] = array('editAccountDetails', $params);
        $id = (string) $params['id'];
        if (isset(self::$refuse[$id])) {
            return array('success' => false, 'error' => array(self::$refuse[$id]));
        }
        self::$edits[] = $params;
        foreach (self::$accounts as $i => $row) {
            if ((string) $row['id'] === $id && isset($params['status'])) {
                self::$accounts[$i]['status'] = (string) $params['status'];
            }
        }
        return array('success' => true, 'call' => 'editAccountDetails');
    }

    /**
     * getAccountDetails (`id`; reply `details`: the hb_accounts row, strings), as HostBill's API
     * reference shows it (api.hostbillapp.com/accounts/getAccountDetails).
     */
    public function getAccountDetails($params)
    {
        self::$calls[] = array('getAccountDetails', $params);
        foreach (self::$accounts as $row) {
            if ((string) $row['id'] === (string) $params['id']) {
                return array('success' => true, 'call' => 'getAccountDetails', 'details' => array_map('strval', $row));
            }
        }
        return array('success' => false, 'error' => array('Account not found'));
    }

    /**
     * addTicket: required `name`, `subject`, `body`, `email`, or `client_id` instead of name and
     * email; optional `dept_id`, `isinternal` (1: staff only), `priority` (0-3), `notes`...; reply
     * `ticket_id` (api2.hostbillapp.com/tickets/addTicket.html). `$refuseTickets` makes it fail.
     */
    public function addTicket($params)
    {
        self::$calls[] = array('addTicket', $params);
        if (self::$refuseTickets !== null) {
            return array('success' => false, 'error' => array(self::$refuseTickets));
        }
        if (!isset($params['subject'], $params['body']) || (!isset($params['client_id']) && !isset($params['name'], $params['email']))) {
            return array('success' => false, 'error' => array('Missing required parameters'));
        }
        self::$tickets[] = $params;
        return array('success' => true, 'ticket_id' => 700 + count(self::$tickets), 'call' => 'addTicket', 'info' => array('New ticket has been created'));
    }

    /**
     * addTicketNotes: `id` (the ticket), `notes`: "Sets new ticket notes" (replaces them); reply
     * `info` (api2.hostbillapp.com/tickets/addTicketNotes.html). Kept in `$ticketNotes`.
     */
    public function addTicketNotes($params)
    {
        self::$calls[] = array('addTicketNotes', $params);
        if (!isset($params['id'], $params['notes'])) {
            return array('success' => false, 'error' => array('Missing required parameters'));
        }
        foreach (self::$tickets as $i => $ticket) {
            if ((string) (701 + $i) === (string) $params['id']) {
                self::$ticketNotes[(string) $params['id']] = (string) $params['notes'];
                return array('success' => true, 'call' => 'addTicketNotes', 'info' => array('Ticket notes updated'));
            }
        }
        return array('success' => false, 'error' => array('Invalid ticket ID'));
    }

    /**
     * accountCreate / accountSuspend / accountUnsuspend (`id`): "Invoke account create / suspend /
     * unsuspend method" (api2.hostbillapp.com/accounts/accountSuspend.html, ...): HostBill runs the
     * account's module as its own code does (HostBill's includes/types/class.vmware5type.php, in
     * clemenclay/speednova: the module of the account's App, `connect($server)`,
     * `setAccount($account)`, then the method), and records the new status when it returns true;
     * the module's errors are the reply's `error`. `$moduleActions` keeps [call, id, ok].
     */
    public function accountCreate($params)
    {
        return $this->moduleAction('accountCreate', 'Create', 'Active', $params);
    }

    public function accountSuspend($params)
    {
        return $this->moduleAction('accountSuspend', 'Suspend', 'Suspended', $params);
    }

    public function accountUnsuspend($params)
    {
        return $this->moduleAction('accountUnsuspend', 'Unsuspend', 'Active', $params);
    }

    private function moduleAction($call, $method, $status, $params)
    {
        self::$calls[] = array($call, $params);
        foreach (self::$accounts as $i => $row) {
            if ((string) $row['id'] !== (string) $params['id']) {
                continue;
            }
            $server = (new HbServersModel())->getServerDetails($row['server_id']);
            if (!$server) {
                return array('success' => false, 'call' => $call, 'error' => array('Account has no App'));
            }
            $class = strtolower(HbApps::$groups[$server['group_id']]['modulename']);
            $module = new $class();
            $module->connect($server);
            $module->setAccount(array_map('strval', $row));
            $ok = (bool) $module->$method();
            self::$moduleActions[] = array($call, (string) $row['id'], $ok);
            if ($method === 'Create') {
                // What Create wrote to $details is saved with the account (see savedDetails()).
                self::$savedDetails[(string) $row['id']] = $module->savedDetails();
            }
            if (!$ok) {
                return array('success' => false, 'call' => $call, 'error' => $module->recordedErrors());
            }
            self::$accounts[$i]['status'] = $status;
            return array('success' => true, 'call' => $call, 'info' => array("Account #{$row['id']}: {$method} done"));
        }
        return array('success' => false, 'call' => $call, 'error' => array('Account not found'));
    }

    /**
     * addAdminNote: `item_id`, `item_type` (account, client, ...), `note`; optional `flags` (2: the
     * customer sees it); reply `note_id` (api2.hostbillapp.com/misc/addAdminNote.html).
     */
    public function addAdminNote($params)
    {
        self::$calls[] = array('addAdminNote', $params);
        if (!isset($params['item_id'], $params['item_type'], $params['note'])) {
            return array('success' => false, 'error' => array('Missing required parameters'));
        }
        self::$notes[] = $params;
        return array('success' => true, 'note_id' => (string) (10 + count(self::$notes)), 'call' => 'addAdminNote');
    }

    /**
     * meteredGetVariables (`product_id`; reply `variables`: a list of rows `id`, `product_id`,
     * `name`, `variable_name`, `unit_name`, `cycle`, `scheme`, `options`, `prices`), as HostBill's
     * API reference shows it (api2.hostbillapp.com/invoices/meteredGetVariables.html).
     */
    public function meteredGetVariables($params)
    {
        self::$calls[] = array('meteredGetVariables', $params);
        $product = isset($params['product_id']) ? (string) $params['product_id'] : '';
        return array('success' => true, 'call' => 'meteredGetVariables', 'variables' => isset(self::$meteredVariables[$product]) ? self::$meteredVariables[$product] : array());
    }

    /**
     * meteredAddUsage: required `account_id`, `variable` (its variable_name), `qty`; optional
     * `output`, `rawoutput`, `charge` ("if not present HostBill will calculate it"),
     * `date_created`, `date_updated` (Y-m-d H:i:s); reply `usage_id` (api2.hostbillapp.com/
     * invoices/meteredAddUsage.html; called in-process by the EasyDCIM module's cron controller,
     * TeamEasyDCIM/easydcim-dedicated-servers-for-hostbill
     * includes/modules/Hosting/easydcim/cron/class.easydcim_controller.php call_Hourly). The row
     * is kept in HbMetered's table, shaped as meteredGetUsage lists a value. This double does not
     * price usage: without `charge` it stores 0 (HostBill would apply the variable's scheme).
     */
    public function meteredAddUsage($params)
    {
        self::$calls[] = array('meteredAddUsage', $params);
        if (self::$meteredRefuse !== null) {
            return array('success' => false, 'error' => array(self::$meteredRefuse));
        }
        if (!isset($params['account_id'], $params['variable'], $params['qty'])) {
            return array('success' => false, 'error' => array('Missing required parameters'));
        }
        $variable = HbMetered::variableOf((string) $params['account_id'], (string) $params['variable']);
        if ($variable === null) {
            return array('success' => false, 'error' => array('Invalid variable'));
        }
        $now = date('Y-m-d H:i:s');
        $id = HbMetered::insert(array(
            'account_id' => (string) $params['account_id'],
            'variable_id' => $variable['id'],
            'variable_name' => $variable['variable_name'],
            'qty' => (string) $params['qty'],
            'charge' => isset($params['charge']) ? (string) $params['charge'] : '0',
            'output' => isset($params['output']) ? (string) $params['output'] : '',
            'rawoutput' => isset($params['rawoutput']) ? (string) $params['rawoutput'] : '',
            'date_created' => isset($params['date_created']) ? (string) $params['date_created'] : $now,
            'date_updated' => isset($params['date_updated']) ? (string) $params['date_updated'] : $now,
        ));
        return array('success' => true, 'usage_id' => (string) $id, 'call' => 'meteredAddUsage', 'server_time' => time());
    }

    /**
     * meteredGetUsage (`account_id`): "usage of metered billing components for certain HostBill
     * account in current billing period"; reply `variables` keyed by variable id, each with its
     * `usage`, `charge` and `values` (rows `id`, `variable_name`, `date_created`, `date_updated`,
     * `charge`, `qty`, `output`, `rawoutput`, `variable_id`, ...), as HostBill's API reference
     * shows it (api2.hostbillapp.com/invoices/meteredGetUsage.html). The billing period is
     * `$meteredPeriodStart` (null: every row).
     */
    public function meteredGetUsage($params)
    {
        self::$calls[] = array('meteredGetUsage', $params);
        $account = isset($params['account_id']) ? (string) $params['account_id'] : '';
        $product = null;
        foreach (self::$accounts as $row) {
            if ((string) $row['id'] === $account) {
                $product = isset($row['product_id']) ? (string) $row['product_id'] : '';
            }
        }
        if ($product === null) {
            return array('success' => false, 'error' => array('Account not found'));
        }
        $variables = array();
        foreach (isset(self::$meteredVariables[$product]) ? self::$meteredVariables[$product] : array() as $variable) {
            $values = array();
            $qty = 0.0;
            $charge = 0.0;
            foreach (HbMetered::rows($account) as $value) {
                if ($value['variable_id'] !== (string) $variable['id'] || (self::$meteredPeriodStart !== null && strcmp($value['date_created'], self::$meteredPeriodStart) < 0)) {
                    continue;
                }
                $values[] = $value + array('unit_name' => $variable['unit_name'], 'cycle' => 'Monthly', 'name' => $variable['name'], 'scheme' => $variable['scheme'], 'options' => '0');
                $qty += (float) $value['qty'];
                $charge += (float) $value['charge'];
            }
            $variables[(string) $variable['id']] = array(
                'id' => (string) $variable['id'], 'product_id' => $product, 'name' => $variable['name'], 'variable_name' => $variable['variable_name'],
                'unit_name' => $variable['unit_name'], 'cycle' => 'Monthly', 'scheme' => $variable['scheme'], 'options' => '0',
                'usage' => (string) $qty, 'charge' => $charge, 'values' => $values,
            );
        }
        return array('success' => true, 'variables' => $variables, 'call' => 'meteredGetUsage');
    }

    public function getAppGroups($params)
    {
        self::$calls[] = array('getAppGroups', $params);
        $groups = array();
        foreach (HbApps::$groups as $group) {
            $count = count(array_filter(HbApps::$rows, function ($r) use ($group) {
                return $r['group_id'] === $group['id'];
            }));
            $groups[] = $group + array('servers' => (string) $count);
        }
        return array('success' => true, 'servers' => $groups, 'call' => 'getAppGroups');
    }

    public function getAppServers($params)
    {
        self::$calls[] = array('getAppServers', $params);
        if (!isset($params['group'], HbApps::$groups[(string) $params['group']])) {
            return array('success' => false, 'error' => array('Invalid group'));
        }
        $group = HbApps::$groups[(string) $params['group']];
        $servers = array();
        foreach (HbApps::$rows as $row) {
            if ($row['group_id'] === $group['id']) {
                $servers[] = array(
                    'id' => $row['id'], 'name' => $row['name'], 'host' => $row['host'], 'ip' => $row['ip'],
                    'max_accounts' => $row['max_accounts'], 'accounts' => '0', 'module' => $group['modulename'],
                    'type' => 'Hosting', 'default' => $row['default'],
                );
            }
        }
        return array('success' => true, 'servers' => $servers, 'call' => 'getAppServers');
    }
}

/**
 * HBRegistry::db(): HostBill's PDO handle, as the original CloudPe module's admin controller uses
 * it (`HBRegistry::db()->prepare(...)`, `execute`, `fetch(PDO::FETCH_ASSOC)`, `closeCursor`). In
 * the tests it is a real pdo_mysql connection to a MariaDB holding HostBill's own tables
 * (database.php, HostBillTestDb).
 */
class HBRegistry
{
    /** @var HostBillTestDb|object */
    public static $db;

    public static function db()
    {
        return self::$db;
    }
}

/**
 * Where the metered-usage doubles keep HostBill's usage rows: a table of the tests' database,
 * `hbtest_metered_usage`, so that a child PHP process (the usage kill tests) and the test see the
 * same rows. HostBill's own table is not public (its install.sql in netway-devops/space creates
 * none: only the cron rows `meteredBillingUpdate` and `meteredBillingCleanup`; the encoded core
 * creates it): this one has the columns of meteredGetUsage's `values` (api2.hostbillapp.com/
 * invoices/meteredGetUsage.html) plus `account_id`, with DECIMAL amounts.
 */
class HbMetered
{
    const TABLE = 'hbtest_metered_usage';

    /** The variable named `$name` of the account's product, or null. */
    public static function variableOf($accountId, $name)
    {
        foreach (ApiWrapper::$accounts as $row) {
            if ((string) $row['id'] === $accountId) {
                $product = isset($row['product_id']) ? (string) $row['product_id'] : '';
                foreach (isset(ApiWrapper::$meteredVariables[$product]) ? ApiWrapper::$meteredVariables[$product] : array() as $variable) {
                    if ($variable['variable_name'] === $name) {
                        return $variable;
                    }
                }
            }
        }
        return null;
    }

    public static function insert(array $row)
    {
        $db = self::db();
        $statement = $db->prepare('INSERT INTO `' . self::TABLE . '` (`' . implode('`, `', array_keys($row)) . '`) VALUES (' . implode(', ', array_fill(0, count($row), '?')) . ')');
        $statement->execute(array_values($row));
        return (int) $db->lastInsertId();
    }

    /** The account's rows (every account's when null), oldest id first, every value a string. */
    public static function rows($accountId = null)
    {
        $statement = self::db()->prepare('SELECT `id`, `account_id`, `variable_id`, `variable_name`, `qty`, `charge`, `output`, `rawoutput`, `date_created`, `date_updated` FROM `' . self::TABLE . '`' . ($accountId === null ? '' : ' WHERE `account_id` = ?') . ' ORDER BY `id`');
        $statement->execute($accountId === null ? array() : array((string) $accountId));
        return array_map(function ($row) {
            return array_map('strval', $row);
        }, $statement->fetchAll(PDO::FETCH_ASSOC));
    }

    private static function db()
    {
        $db = HBRegistry::db();
        $db->exec('CREATE TABLE IF NOT EXISTS `' . self::TABLE . '` ('
            . '`id` int(11) NOT NULL AUTO_INCREMENT, `account_id` int(11) NOT NULL, `variable_id` int(11) NOT NULL, '
            . '`variable_name` varchar(64) NOT NULL, `qty` decimal(28,10) NOT NULL, `charge` decimal(28,10) NOT NULL, '
            . '`output` text NOT NULL, `rawoutput` text NOT NULL, `date_created` datetime NOT NULL, `date_updated` datetime NOT NULL, '
            . 'PRIMARY KEY (`id`)) ENGINE=InnoDB DEFAULT CHARSET=utf8');
        return $db;
    }
}

/** What the hbm_log_* functions received: [kind, message, tag]. */
class HbLog
{
    public static $lines = array();

    /** Test helper: every message, one per line. */
    public static function text()
    {
        return implode("\n", array_map(function ($l) {
            return $l[0] . ' ' . $l[2] . ': ' . $l[1];
        }, self::$lines));
    }
}

/** HostBill's system log (Reports → Logs → System Log). */
function hbm_log_system($message, $tag)
{
    HbLog::$lines[] = array('system', $message, $tag);
}

function hbm_log_error($message, $tag)
{
    HbLog::$lines[] = array('error', $message, $tag);
}

/**
 * hbm_logged_admin(): the staff member logged in to the admin area, as an array (`id`, `email`,
 * `firstname`, ...), read by public modules as `isset($aAdmin['id'])` to tell an admin's request
 * from the cron's (netway-devops/space: googleresellerprogramhandle and invoicefilter cron
 * controllers, cpaneldnszonehandle admin controller). By default an admin is logged in, as when
 * the module's actions are run from the account page; the cron's tests set NONE.
 */
class HbAdmin
{
    const STAFF = array('id' => '1', 'username' => 'ann.admin', 'email' => 'ann@provider.example', 'firstname' => 'Ann', 'lastname' => 'Admin');
    const NONE = array();
    /** @var array */
    public static $logged = self::STAFF;
}

function hbm_logged_admin()
{
    return HbAdmin::$logged;
}

/**
 * hbm_log_account($message, $accountId): a line in the account's own log (netway-devops/space,
 * Hosting/dnssechandle/class.dnssechandle.php). Recorded as kind `account`, the tag being the id.
 */
function hbm_log_account($message, $accountId)
{
    HbLog::$lines[] = array('account', $message, (string) $accountId);
}

/** Resets every double. */
class HostBillDoubles
{
    public static function reset()
    {
        ApiWrapper::$accounts = array();
        ApiWrapper::$clients = array();
        ApiWrapper::$perPage = 25;
        ApiWrapper::$ignoreStatusFilter = false;
        ApiWrapper::$refuse = array();
        ApiWrapper::$calls = array();
        ApiWrapper::$edits = array();
        ApiWrapper::$clientFieldCodes = array('cloudpeid', 'cpid');
        ApiWrapper::$refuseClientEdits = null;
        ApiWrapper::$tickets = array();
        ApiWrapper::$notes = array();
        ApiWrapper::$refuseTickets = null;
        ApiWrapper::$ticketNotes = array();
        ApiWrapper::$moduleActions = array();
        ApiWrapper::$savedDetails = array();
        ApiWrapper::$meteredVariables = array();
        ApiWrapper::$meteredRefuse = null;
        ApiWrapper::$meteredPeriodStart = null;
        HbAdmin::$logged = HbAdmin::STAFF;
        HbApps::$rows = array();
        HbApps::$groups = array();
        HbServersModel::$rawCustom = false;
        // The last test's handle is closed before the next one opens: the module's objects may
        // hold it in reference cycles (a closure bound to its object) that only PHP's cycle
        // collector frees, and a connection per test left open reaches the server's
        // max_connections ("Too many connections") within one run.
        HBRegistry::$db = null;
        gc_collect_cycles();
        HBRegistry::$db = new HostBillTestDb();
        HbLog::$lines = array();
    }
}
