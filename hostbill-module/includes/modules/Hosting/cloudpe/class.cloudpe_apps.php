<?php

/** Raised when HostBill cannot tell which Apps or which module row are CloudPe's. Admin-readable. */
class cloudpe_apps_error extends Exception
{
}

/**
 * Everything the module infers about HostBill itself that HostBill does not document for module
 * authors, in one place:
 *
 *  - which Apps (servers) belong to this module: Admin API `getAppGroups` (each group names its
 *    module: `module` is the module's id, `modulename` its name), keeping the groups whose module
 *    name is "cloudpe" (case-insensitive), then `getAppServers` per group for the App ids; on a
 *    HostBill without getAppGroups, the Servers model's `findServersBy('module', 'cloudpe')`;
 *  - an App's full record, as HostBill hands it to `connect()`: the Servers model,
 *    `HBLoader::LoadModel('Servers')->getServerDetails($id)`, as public controllers do
 *    (webnic_ssl, wisp_hostbill);
 *  - this module's id (`hb_modules_configuration` row whose `filename` is class.cloudpe.php) and
 *    its cron tasks (`hb_cron_tasks` rows `custom:<module id>:call_Daily`, `call_EveryRun`,
 *    `call_Monthly`, `call_Hourly`), read and written through HostBill's PDO handle, `HBRegistry::db()`, as the
 *    original CloudPe module did;
 *  - a product's module options, for many accounts at once (productOptions): the rows of
 *    `hb_products_modules` (product_id, module, main, server, options: HostBill's install.sql)
 *    whose `module` is this module's id (public modules find their products by that join,
 *    `hb_products_modules.module = hb_modules_configuration.id`), `options` read as HostBill
 *    stores its other arrays (serialize()d, as `hb_servers.custom`; a JSON object accepted too),
 *    keyed `option1`..`optionN` as the module declares `$options` (HostBill's devkit,
 *    class.advancedexample.php: `'option1' => ['name' => 'Plan Name', 'type' => 'loadable', ...]`,
 *    read back as `$this->options['option1']['value']`), each turned into its name;
 *  - which product an account has: the getAccounts row's `product_id` when HostBill gives one
 *    (its API reference's example row has none), else getAccounts' documented
 *    `filter[product_id]` per product of the module (productOfAccounts);
 *  - how a client's custom field is set: Admin API `setClientDetails` with `id` and the field's
 *    code as a parameter (`['id' => 11, 'cloudpeid' => '1005']`). HostBill's API reference lists
 *    setClientDetails among the client calls beside getClientDetails, and documents registration
 *    fields, custom ones included, as parameters named by their code (addClient: "field: Any
 *    other client registration field variable", api2.hostbillapp.com/clients/addClient.html);
 *    that setClientDetails takes a custom field the same way is the inference. So every write is
 *    read back with getClientDetails (custom fields under `client`, keyed by code), and a field
 *    that did not take the value is an error naming it (setClientField);
 *  - the product options of an action: `$this->options[<key>]['value']`, which HostBill fills
 *    before Create (the devkit's advancedexample reads `$this->options['option1']['value']`;
 *    HostBill's own vmware5 module keys them by name, `$this->options['datacenterName']['value']`)
 *    and, for ChangePackage, with the NEW package's configuration (advancedexample: "$options
 *    variable is loaded with new package configuration"); a `loadable` option's choices come from
 *    the module method its `default` names, `[[value, label], ...]`, or false after addError
 *    (advancedexample `getPlans`);
 *  - what Create writes to `$this->details[<key>]['value']` is saved with the account (the
 *    devkit's advancedexample saves the remote client id so; vmware5: "Modifying $details array
 *    values in Create method will update database values").
 *
 * (How the module logs and notifies, and who ran an action, is inferred in cloudpe_audit.)
 *
 * If HostBill turns out to list a module's Apps differently, `all()` is the one method to change.
 */
class cloudpe_apps
{
    /** The module's name as HostBill lists it (class and folder name; its $modname matches too). */
    const MODULE_NAME = 'cloudpe';
    /** The module's file, as hb_modules_configuration.filename records it. */
    const MODULE_FILE = 'class.cloudpe.php';
    /** Label of the daily task in Settings → Automation (HostBill's own rows read like this). */
    const DAILY_TASK_NAME = 'Module - CloudPe, daily cron call';
    /**
     * The other tasks: method => [label, run_every, run_every_time]. `Run`/`1200` (every cron run)
     * and `Month`/`1` are how HostBill's install.sql schedules its own every-run and monthly tasks;
     * `Hour`/`1` how it schedules its hourly `domainSync` (read as "every hour", an inference).
     */
    const OTHER_TASKS = array(
        'call_EveryRun' => array('Module - CloudPe, retries of failed actions (every run)', 'Run', '1200'),
        'call_Monthly' => array('Module - CloudPe, monthly reconciliation', 'Month', '1'),
        'call_Hourly' => array('Module - CloudPe, usage import (hourly)', 'Hour', '1'),
    );

    /** @var object|null ApiWrapper */
    private $api;
    /** @var object|null the Servers model */
    private $servers;
    /** @var cloudpe_db */
    private $db;

    /**
     * @param object|null $api HostBill's in-process Admin API (default: new ApiWrapper())
     * @param object|null $servers the Servers model (default: HBLoader::LoadModel('Servers'))
     * @param object|null $db a PDO handle (default: HBRegistry::db())
     */
    public function __construct($api = null, $servers = null, $db = null)
    {
        $this->api = $api;
        $this->servers = $servers;
        $this->db = cloudpe_db::of($db);
    }

    /**
     * A task over every App (the hourly usage import, the monthly reconciliation): for each App,
     * a clone of `$prototype` connected to it is handed to `$run($module, $label)`, which returns
     * the App's line; when connecting or `$run` throws, `$failed($module, $label, $why)` returns
     * it instead. One failing App never stops the others. The lines, one per App; when the Apps
     * cannot be listed, or there is none, one line saying so (a listing failure is logged too).
     *
     * @param cloudpe $prototype the controller's module (not connected)
     * @param cloudpe_apps $apps (or an object with its all() and details())
     * @param string $task how the task names itself, e.g. "CloudPe usage import"
     * @return string
     */
    public static function each(cloudpe $prototype, $apps, $task, callable $run, callable $failed)
    {
        try {
            $list = $apps->all();
        } catch (\Throwable $e) {
            $message = "{$task}: could not list the CloudPe Apps: " . $prototype->scrub($e->getMessage());
            hbm_log_error($message, cloudpe::LOG_TAG);
            return $message;
        }
        if (!$list) {
            return "{$task}: no CloudPe App is set up (Settings → Apps), nothing done";
        }
        $lines = array();
        foreach ($list as $app) {
            $label = "App #{$app['id']}" . ($app['name'] !== '' ? " \"{$app['name']}\"" : '');
            $module = clone $prototype;
            try {
                $module->connect($apps->details($app['id']));
                $line = $run($module, $label);
            } catch (\Throwable $e) {
                $why = ($e instanceof cloudpe_host_error || $e instanceof cloudpe_apps_error)
                    ? $e->getMessage()
                    : 'stopped by an unexpected error: ' . get_class($e) . ': ' . $e->getMessage();
                $line = $failed($module, $label, $why);
            }
            $lines[] = $line;
        }
        return implode("\n", $lines);
    }

    /**
     * Every App of this module, ordered by id.
     *
     * @return array[] each ['id' => string, 'name' => string]
     * @throws cloudpe_apps_error
     */
    public function all()
    {
        if (!is_callable(array($this->api(), 'getAppGroups'))) {
            return $this->allByServersModel();
        }
        $groups = $this->api()->getAppGroups(array());
        if (!is_array($groups) || empty($groups['success'])) {
            throw new cloudpe_apps_error('HostBill did not list its App groups (getAppGroups): ' . self::apiError($groups));
        }
        $apps = array();
        foreach (isset($groups['servers']) && is_array($groups['servers']) ? $groups['servers'] : array() as $group) {
            $module = isset($group['modulename']) ? strtolower(trim((string) $group['modulename'])) : '';
            if ($module !== self::MODULE_NAME || !isset($group['id'])) {
                continue;
            }
            $servers = $this->api()->getAppServers(array('group' => $group['id']));
            if (!is_array($servers) || empty($servers['success'])) {
                throw new cloudpe_apps_error("HostBill did not list the Apps of group #{$group['id']} (getAppServers): " . self::apiError($servers));
            }
            foreach (isset($servers['servers']) && is_array($servers['servers']) ? $servers['servers'] : array() as $server) {
                if (isset($server['id']) && (string) $server['id'] !== '') {
                    $id = (string) $server['id'];
                    $apps[$id] = array('id' => $id, 'name' => isset($server['name']) ? (string) $server['name'] : '');
                }
            }
        }
        uksort($apps, function ($a, $b) {
            return (int) $a - (int) $b;
        });
        return array_values($apps);
    }

    /**
     * Every App of this module on a HostBill without the Admin API's getAppGroups (older
     * versions): the Servers model's `findServersBy('module', <module name>)`, as public cron
     * controllers list their Apps (ModulesGarden's EasyDCIM cron controller:
     * `HBLoader::LoadModel('Servers')->findServersBy('module', 'easydcim')`), each row an
     * hb_servers row.
     *
     * @return array[] each ['id' => string, 'name' => string], ordered by id
     * @throws cloudpe_apps_error
     */
    private function allByServersModel()
    {
        $servers = $this->servers();
        if (!is_callable(array($servers, 'findServersBy'))) {
            throw new cloudpe_apps_error('this HostBill offers neither the Admin API call getAppGroups nor the Servers model\'s findServersBy, the two ways the module knows to list its Apps');
        }
        $rows = $servers->findServersBy('module', self::MODULE_NAME);
        if (!is_array($rows)) {
            throw new cloudpe_apps_error('HostBill did not list the CloudPe Apps (Servers model findServersBy): it answered ' . gettype($rows));
        }
        $apps = array();
        foreach ($rows as $server) {
            if (is_array($server) && isset($server['id']) && (string) $server['id'] !== '') {
                $id = (string) $server['id'];
                $apps[$id] = array('id' => $id, 'name' => isset($server['name']) ? (string) $server['name'] : '');
            }
        }
        uksort($apps, function ($a, $b) {
            return (int) $a - (int) $b;
        });
        return array_values($apps);
    }

    /**
     * The App's record as HostBill hands it to connect().
     *
     * @return array
     * @throws cloudpe_apps_error
     */
    public function details($id)
    {
        $row = $this->servers()->getServerDetails($id);
        if (!is_array($row) || !$row) {
            throw new cloudpe_apps_error("HostBill returned no details for App #{$id} (Servers model getServerDetails)");
        }
        if (!isset($row['id']) || (string) $row['id'] === '') {
            $row['id'] = (string) $id;
        }
        return $row;
    }

    /**
     * This module's id in hb_modules_configuration.
     *
     * @return string
     * @throws cloudpe_apps_error
     */
    public function moduleId()
    {
        $rows = $this->db->select('SELECT id FROM hb_modules_configuration WHERE filename = :filename', array(':filename' => self::MODULE_FILE));
        if (!$rows || !isset($rows[0]['id']) || (string) $rows[0]['id'] === '') {
            throw new cloudpe_apps_error('HostBill has no module row for ' . self::MODULE_FILE . ' (hb_modules_configuration): activate CloudPe under Settings → Modules → Hosting Modules first');
        }
        return (string) $rows[0]['id'];
    }

    /** The daily task's key in hb_cron_tasks. */
    public function dailyTask()
    {
        return 'custom:' . $this->moduleId() . ':call_Daily';
    }

    /**
     * Makes sure HostBill's cron runs the module's call_Daily: inserts its hb_cron_tasks row when
     * missing, leaves an existing one (and the admin's schedule in it) alone.
     *
     * @return string what was done, for the system log
     * @throws cloudpe_apps_error
     */
    public function ensureDailyTask()
    {
        $task = $this->dailyTask();
        if (!$this->registerTask($task, self::DAILY_TASK_NAME, 'Time', '1200')) {
            return "the daily sync task {$task} is already registered";
        }
        return "registered the daily sync task {$task} (every day at 12:00; change it under Settings → Automation)";
    }

    /**
     * Makes sure the every-run task (retries of failed actions) and the monthly task
     * (reconciliation) exist, like ensureDailyTask.
     *
     * @return string[] what was done, for the system log
     * @throws cloudpe_apps_error
     */
    public function ensureOtherTasks()
    {
        $done = array();
        foreach (self::OTHER_TASKS as $method => $task) {
            $key = 'custom:' . $this->moduleId() . ':' . $method;
            $done[] = $this->registerTask($key, $task[0], $task[1], $task[2])
                ? "registered the task {$key} ({$task[0]}; change it under Settings → Automation)"
                : "the task {$key} is already registered";
        }
        return $done;
    }

    /** Module flags (hb_modules_configuration.settings) of 1.0.x's admin area, which 2.x does not ship. */
    const STALE_FLAGS = array('haveadmin', 'extras_menu');
    /** Module flags 2.x needs: its cron controller. */
    const NEEDED_FLAGS = array('havecron');

    /**
     * Brings the module's flags to what this version needs (see STALE_FLAGS, NEEDED_FLAGS): HostBill
     * sets them from the folder layout when the module is activated, so over 1.0.x they still say
     * `|haveadmin|extras_menu|`. Flags it does not know are kept; nothing is written when they
     * are right already.
     *
     * @return string what was done, for the system log
     * @throws cloudpe_apps_error
     */
    public function ensureModuleFlags()
    {
        $rows = $this->db->select('SELECT id, settings FROM hb_modules_configuration WHERE filename = :filename', array(':filename' => self::MODULE_FILE));
        if (!$rows || !isset($rows[0]['id'])) {
            throw new cloudpe_apps_error('HostBill has no module row for ' . self::MODULE_FILE . ' (hb_modules_configuration): activate CloudPe under Settings → Modules → Hosting Modules first');
        }
        $old = (string) $rows[0]['settings'];
        $flags = array_values(array_filter(explode('|', $old), function ($flag) {
            return $flag !== '' && !in_array($flag, self::STALE_FLAGS, true);
        }));
        foreach (self::NEEDED_FLAGS as $flag) {
            if (!in_array($flag, $flags, true)) {
                $flags[] = $flag;
            }
        }
        $new = '|' . implode('|', $flags) . '|';
        if ($new === $old) {
            return "the module's flags are already {$new}";
        }
        $this->db->execute('UPDATE hb_modules_configuration SET settings = :settings WHERE id = :id', array(':settings' => $new, ':id' => (string) $rows[0]['id']));
        return "the module's flags were " . ($old === '' ? 'empty' : $old) . ", now {$new}";
    }

    /**
     * Brings the schedules 1.0.x wrote to what this version needs. 1.0.x's rows are told by their
     * time, written `HH:MM` ('02:00'), which neither HostBill's own rows nor its Automation page
     * write (`HHMM`, e.g. '1200' in install.sql): such an every-run row is put back on every cron
     * run (`Run`: it now runs the retries), and such a time elsewhere is written `HHMM`, keeping
     * the hour. Any other schedule is the admin's and is left alone.
     *
     * @return string[] what was done, for the system log
     * @throws cloudpe_apps_error
     */
    public function ensureSchedules()
    {
        $done = array();
        foreach (array('call_Daily' => null, 'call_EveryRun' => 'Run', 'call_Monthly' => null) as $method => $runEvery) {
            $task = 'custom:' . $this->moduleId() . ':' . $method;
            $rows = $this->db->select('SELECT task, run_every, run_every_time FROM hb_cron_tasks WHERE task = :task', array(':task' => $task));
            if (!$rows) {
                continue;
            }
            $old = array((string) $rows[0]['run_every'], (string) $rows[0]['run_every_time']);
            $new = $old;
            if (!preg_match('/^(\d{1,2}):(\d{2})$/', $old[1], $m)) {
                continue;
            }
            if ($runEvery !== null && $old[0] !== $runEvery) {
                $new = array($runEvery, '1200');
            } else {
                $new[1] = sprintf('%02d%s', (int) $m[1], $m[2]);
            }
            if ($new !== $old) {
                $this->db->execute('UPDATE hb_cron_tasks SET run_every = :run_every, run_every_time = :run_every_time WHERE task = :task', array(':run_every' => $new[0], ':run_every_time' => $new[1], ':task' => $task));
                $done[] = "the task {$task} was scheduled {$old[0]} {$old[1]}, now {$new[0]} {$new[1]}";
            }
        }
        return $done;
    }

    /**
     * Inserts the hb_cron_tasks row `$task` unless it exists (an existing row, and the admin's
     * schedule in it, is left alone). Returns whether it was inserted.
     *
     * @throws cloudpe_apps_error
     */
    private function registerTask($task, $name, $runEvery, $runEveryTime)
    {
        if ($this->db->select('SELECT task FROM hb_cron_tasks WHERE task = :task', array(':task' => $task))) {
            return false;
        }
        $row = array(
            'task' => $task,
            'name' => $name,
            'lastrun' => '0000-00-00 00:00:00',
            'status' => '1',
            'count' => '0',
            'metadata' => '',
            'output' => '',
            'run_every' => $runEvery,
            'run_every_time' => $runEveryTime,
        );
        // Newer HostBill versions add `profile_id` (their own rows use 1); older ones lack the column.
        $errors = array();
        foreach (array($row + array('profile_id' => '1'), $row) as $attempt) {
            $error = $this->db->insert('hb_cron_tasks', $attempt);
            if ($error === null) {
                return true;
            }
            $errors[] = $error;
        }
        throw new cloudpe_apps_error("could not register the task {$task} in hb_cron_tasks: " . implode('; ', array_unique($errors)));
    }

    /**
     * Every product of this module with its module options by name (`$names`: option key =>
     * name, as the module declares `$options`; a key not declared keeps its own name). A value
     * HostBill holds as `['value' => ...]` is taken as that value; every value is a trimmed string.
     * Products whose `options` cannot be read are left out and named in `$unreadable`.
     *
     * @param array<string, string> $names
     * @param string[] $unreadable product id => why, filled in place
     * @return array<string, array<string, string>> product id => name => value
     * @throws cloudpe_apps_error when the module's row or the table cannot be read
     */
    public function productOptions(array $names, &$unreadable = array())
    {
        $rows = $this->db->select('SELECT product_id, options FROM hb_products_modules WHERE module = :module ORDER BY product_id', array(':module' => $this->moduleId()));
        $products = array();
        $unreadable = array();
        foreach ($rows as $row) {
            $product = (string) $row['product_id'];
            try {
                $raw = cloudpe::parseCustom($row['options']);
            } catch (UnexpectedValueException $e) {
                $unreadable[$product] = "product #{$product}'s module options (hb_products_modules.options) are neither a serialized array nor a JSON object: save the product's Connect with App tab again";
                continue;
            }
            $options = array();
            foreach ($raw as $key => $value) {
                $options[isset($names[$key]) ? $names[$key] : (string) $key] = $value;
            }
            $products[$product] = $options;
        }
        return $products;
    }

    /**
     * Which product each account of App `$serverId` has, for accounts whose getAccounts row names
     * none: getAccounts with `filter[server_id]` and `filter[product_id]` for each of
     * `$productIds` (every page). Account id => product id.
     *
     * @param string[] $productIds
     * @return array<string, string>
     * @throws cloudpe_apps_error when HostBill refuses a page
     */
    public function productOfAccounts($serverId, array $productIds)
    {
        $map = array();
        foreach ($productIds as $product) {
            $product = (string) $product; // array keys: PHP made the numeric ones ints
            cloudpe_sync::eachPage($this->api(), array('server_id' => $serverId, 'product_id' => $product), "accounts of product #{$product} on App #{$serverId}", function (array $rows) use (&$map, $product) {
                foreach ($rows as $row) {
                    $map[(string) $row['id']] = (string) $product;
                }
            });
        }
        return $map;
    }

    /**
     * Sets client `$clientId`'s custom field `$code` to `$value` (setClientDetails, see the header)
     * and reads it back. Null when HostBill holds the value now; otherwise why not, for the admin.
     * The one way the module writes a client field (Create's link, and a link applied from a
     * reconciliation's proposal).
     *
     * @return string|null
     */
    public function setClientField($clientId, $code, $value)
    {
        $reply = $this->api()->setClientDetails(array('id' => (string) $clientId, (string) $code => (string) $value));
        if (!is_array($reply) || empty($reply['success'])) {
            return 'setClientDetails refused it (' . self::apiError($reply) . ')';
        }
        $check = $this->api()->getClientDetails(array('id' => (string) $clientId));
        if (!is_array($check) || empty($check['success']) || !isset($check['client']) || !is_array($check['client'])) {
            return 'setClientDetails answered success, but getClientDetails could not read the client back (' . self::apiError($check) . ')';
        }
        if (!array_key_exists((string) $code, $check['client'])) {
            return "setClientDetails answered success, but the client has no field with code `{$code}`: create a client custom field with that code, or set the App's \"Client field code\" to the field's code";
        }
        $stored = trim((string) $check['client'][(string) $code]);
        if ($stored !== (string) $value) {
            return "setClientDetails answered success, but the field reads \"" . cloudpe_text::html($stored) . "\" afterwards";
        }
        return null;
    }

    private function api()
    {
        if ($this->api === null) {
            $this->api = new ApiWrapper();
        }
        return $this->api;
    }

    private function servers()
    {
        if ($this->servers === null) {
            $this->servers = HBLoader::LoadModel('Servers');
        }
        return $this->servers;
    }

    /** The error text of a failed Admin API reply. */
    private static function apiError($reply)
    {
        if (is_array($reply) && isset($reply['error'])) {
            return is_array($reply['error']) ? implode('; ', array_map('strval', $reply['error'])) : (string) $reply['error'];
        }
        return 'no reply';
    }
}
