<?php
/*
 * Peak PHP memory of the daily sync of one large App (issue 25 item 4), under memory_limit=128M.
 *
 *   php hostbill-module/bench/sync-memory.php [--before REF] [--accounts 20000,100000] [--facts 75] [--group]
 *
 * runs, for each account count, the daily sync (cloudpe_sync::daily, as the cron calls it) of this
 * tree's module and of the module at git REF (default `main`, extracted with `git archive`), each
 * in a PHP process of its own with `-d memory_limit=128M`, and prints one line per run: the peak
 * PHP memory (memory_get_peak_usage), the time and the App's line (or PHP's fatal error). Then
 * the same for a report of many small facts (issue 24 item 8): 20,000 accounts whose unchanged
 * decisions carry `--facts` facts each (75: 41.9 MB of report, 1.5 million facts). With --group, a
 * last pair of runs has the App's product name a CloudPe group (issue 23): the sync then asks for
 * every decision's facts (no `--omit-unchanged-facts`) and compares each `cloudpe-group` (one
 * account in ten in another group).
 *
 * With --real, the host is the real one against the simulated CloudPe (HOSTBILL_MODULE_HOST_BIN,
 * CLOUDPE_COMPONENT, CLOUDPE_TRUSTED_KEYS and CLOUDPE_SIM_BIN, as `cargo xtask test` sets them),
 * with as many users as accounts; the simulator's own mix of statuses decides the changes.
 *
 * What is measured is the module: HostBill's side is the test doubles (tests/doubles.php) with
 * accounts and clients generated on demand (nothing of them is held, and what the doubles keep
 * of each call and write for the tests is emptied as the sync goes), and the host is
 * bench/fake-sync-host.php, a process of its own printing a streamed sync's report as the real
 * host does. Accounts: 90% Active, 10% Suspended, each of its own client (the most client reads);
 * client rows have the fields of HostBill's getClientDetails sample reply
 * (api2.hostbillapp.com/clients/getClientDetails.html) plus the CloudPe id field.
 */

/** One sync of `$count` accounts with the module in `$dir` (`$facts` per unchanged decision; `$group`: product 3 names a CloudPe group); prints its figures. */
function child($dir, $count, $facts, $real, $group = false)
{
    require $dir . '/tests/doubles.php';
    require $dir . '/includes/modules/Hosting/cloudpe/class.cloudpe.php';
    require_once $dir . '/includes/modules/Hosting/cloudpe/class.cloudpe_sync.php';
    HostBillDoubles::reset();
    $work = sys_get_temp_dir() . '/cloudpe-bench-' . getmypid();
    mkdir($work . '/keys', 0700, true);
    file_put_contents($work . '/module.wasm', 'not read by the fake host');
    file_put_contents($work . '/keys/vendor.pub', "-----BEGIN PUBLIC KEY-----\nnot read\n-----END PUBLIC KEY-----\n");
    $sim = null;
    $url = 'https://api.example';
    if ($real) {
        $pipes = array();
        $sim = proc_open(array(getenv('CLOUDPE_SIM_BIN'), '--generate', (string) $count, '--first-uid', '5000001', '--session', 'bench-token'), array(1 => array('pipe', 'w'), 2 => array('file', '/dev/null', 'w')), $pipes);
        if (!preg_match('#^listening on (http://127\.0\.0\.1:\d+)#', (string) fgets($pipes[1]), $m)) {
            echo "cloudpe-sim did not start\n";
            return 1;
        }
        $url = $m[1];
    }
    if ($group) {
        // The module's row and its product 3 naming the group (hb_products_modules, as HostBill keeps it).
        if (!in_array('hb_products_modules', array_keys(HBRegistry::$db->columns), true)) {
            echo "n/a: this tree's test database has no hb_products_modules (the module before issue 23 reads no product options)\n";
            return 0;
        }
        HBRegistry::$db->insertRow('hb_modules_configuration', array('id' => '7', 'module' => 'CloudPe', 'type' => 'Hosting', 'config' => 'a:0:{}', 'filename' => 'class.cloudpe.php', 'version' => '2.5.0', 'active' => '1', 'modname' => 'CloudPe', 'subtype' => '0', 'sort_order' => '0', 'settings' => '', 'access' => ''));
        HBRegistry::$db->insertRow('hb_products_modules', array('product_id' => '3', 'module' => '7', 'main' => '1', 'server' => '4', 'options' => serialize(array('CloudPe group' => 'premium'))));
    }
    HbApps::add('4', 'CloudPe big', array('host' => 'api.example', 'status_url' => $url, 'field1' => 'cluster', 'field2' => 'bench-token', 'secure' => '0'), array('Client field code' => 'cloudpeid'));
    ApiWrapper::$clients = new BenchClients($count);
    $api = new BenchApi($count);
    $module = new cloudpe();
    $module->useHostFactory(function ($connection, $timeout, $secrets) use ($work, $facts, $real) {
        if ($real) {
            return new cloudpe_host(getenv('HOSTBILL_MODULE_HOST_BIN'), getenv('CLOUDPE_COMPONENT'), $timeout, $secrets, $work . '/cache', array(), getenv('CLOUDPE_TRUSTED_KEYS'));
        }
        return new cloudpe_host(__DIR__ . '/fake-sync-host.php', $work . '/module.wasm', $timeout, $secrets, null, array('BENCH_FACTS' => (string) $facts, 'BENCH_GROUP' => 'premium'), $work . '/keys');
    });
    $started = microtime(true);
    $base = memory_get_usage();
    $output = cloudpe_sync::daily($module, false, new cloudpe_apps($api), $api);
    $seconds = microtime(true) - $started;
    exec('rm -rf ' . escapeshellarg($work));
    if ($sim !== null) {
        proc_terminate($sim);
        proc_close($sim);
    }
    printf("peak %6.1f MiB (%5.1f MiB before the sync), %5.1f s, %d statuses written | %s\n", memory_get_peak_usage() / 1048576, $base / 1048576, $seconds, $api->edits, str_replace("\n", ' / ', $output));
    return 0;
}

/** getClientDetails' clients, made on demand (the doubles' ApiWrapper reads them through ArrayAccess). */
class BenchClients implements ArrayAccess
{
    private $count;

    public function __construct($count)
    {
        $this->count = $count;
    }

    #[\ReturnTypeWillChange]
    public function offsetExists($id)
    {
        ApiWrapper::$calls = array(); // the doubles record every call: not the module's memory
        return (int) $id > 100000 && (int) $id <= 100000 + $this->count;
    }

    #[\ReturnTypeWillChange]
    public function offsetGet($id)
    {
        $n = (int) $id - 100000;
        return array(
            'email' => "client{$n}@example.com", 'password' => md5("p{$n}"), 'lastlogin' => '2024-11-25 04:32:40', 'ip' => '203.0.113.' . ($n % 250),
            'host' => "host{$n}.example.net", 'status' => 'Active', 'parent_id' => '0', 'firstname' => "First{$n}", 'lastname' => "Last{$n}",
            'companyname' => '', 'address1' => "{$n} Example Street", 'address2' => '', 'city' => 'Birmingham', 'state' => 'West Midlands',
            'postcode' => 'B33 8TH', 'country' => 'GB', 'phonenumber' => (string) (440000000 + $n), 'datecreated' => '2021-09-24', 'notes' => '',
            'language' => 'english', 'company' => '0', 'credit' => '0.00', 'taxexempt' => '0', 'latefeeoveride' => '0', 'cardtype' => '',
            'cardnum' => '', 'expdate' => '', 'overideduenotices' => '0', 'client_id' => (string) $id, 'currency_id' => '0',
            'countryname' => 'United Kingdom', 'cloudpeid' => (string) (5000000 + $n),
        );
    }

    #[\ReturnTypeWillChange]
    public function offsetSet($id, $value)
    {
    }

    #[\ReturnTypeWillChange]
    public function offsetUnset($id)
    {
    }
}

/**
 * HostBill's Admin API for the App's accounts, made on demand: getAccounts (per status, pages of
 * 100 from 0, `sorter.totalpages`), getAccountDetails, editAccountDetails (counted); the App
 * listing goes to the doubles.
 */
class BenchApi
{
    const PER_PAGE = 100;
    public $edits = 0;
    private $count;
    private $edited = array();

    public function __construct($count)
    {
        $this->count = $count;
    }

    private function row($id)
    {
        $status = isset($this->edited[$id]) ? $this->edited[$id] : ($id % 10 === 0 ? 'Suspended' : 'Active');
        return array(
            'id' => (string) $id, 'domain' => "acct{$id}.example", 'client_id' => (string) (100000 + $id), 'server_id' => '4', 'product_id' => '3',
            'firstname' => "First{$id}", 'lastname' => "Last{$id}", 'total' => '10.00', 'billingcycle' => 'Monthly', 'next_due' => '2026-12-31', 'status' => $status,
        );
    }

    public function getAccounts($params)
    {
        $status = isset($params['filter']['status']) ? $params['filter']['status'] : 'Active';
        $page = isset($params['page']) ? (int) $params['page'] : 0;
        $suspended = intdiv($this->count, 10);
        $total = $status === 'Suspended' ? $suspended : ($status === 'Active' ? $this->count - $suspended : 0);
        $rows = array();
        for ($k = $page * self::PER_PAGE; $k < min($total, ($page + 1) * self::PER_PAGE); $k++) {
            $rows[] = $this->row($status === 'Suspended' ? 10 * ($k + 1) : 10 * intdiv($k, 9) + $k % 9 + 1);
        }
        return array('success' => true, 'accounts' => $rows, 'sorter' => array('perpage' => (string) self::PER_PAGE, 'totalpages' => (string) max(1, (int) ceil($total / self::PER_PAGE)), 'sorterpage' => (string) $page, 'sorterrecords' => (string) $total));
    }

    public function getAccountDetails($params)
    {
        return array('success' => true, 'details' => $this->row((int) $params['id']));
    }

    public function editAccountDetails($params)
    {
        self::forgetTraces();
        $this->edits++;
        $this->edited[(int) $params['id']] = (string) $params['status'];
        return array('success' => true);
    }

    /**
     * Empties what the doubles keep of each write for the tests (system-log lines, account-log
     * rows): HostBill writes them to its database, they are not the module's memory.
     */
    private static function forgetTraces()
    {
        if (class_exists('HbLog', false) && isset(HbLog::$lines)) {
            HbLog::$lines = array();
        }
        if (class_exists('HBRegistry', false) && isset(HBRegistry::$db) && is_object(HBRegistry::$db) && property_exists(HBRegistry::$db, 'tables') && is_array(HBRegistry::$db->tables)) {
            foreach (array_keys(HBRegistry::$db->tables) as $table) {
                HBRegistry::$db->tables[$table] = array();
            }
        }
    }

    public function __call($method, $arguments)
    {
        return call_user_func_array(array(new ApiWrapper(), $method), $arguments);
    }
}

/** Runs each tree's sync at each count in a PHP of its own and prints the figures side by side. */
function compare(array $options)
{
    $root = dirname(__DIR__, 2);
    $counts = array_map('intval', explode(',', isset($options['accounts']) ? $options['accounts'] : '20000,100000'));
    $ref = isset($options['before']) ? (string) $options['before'] : 'main';
    $before = sys_get_temp_dir() . '/cloudpe-bench-before-' . getmypid();
    mkdir($before, 0700);
    exec('cd ' . escapeshellarg($root) . ' && git archive ' . escapeshellarg($ref) . ' hostbill-module | tar -x -C ' . escapeshellarg($before), $ignored, $status);
    if ($status !== 0) {
        fwrite(STDERR, "cannot extract hostbill-module at {$ref}\n");
        exit(1);
    }
    $trees = array("before ({$ref})" => $before . '/hostbill-module', 'after (this tree)' => $root . '/hostbill-module');
    $facts = isset($options['facts']) ? (int) $options['facts'] : 75;
    printf("daily sync of one App, PHP %s, memory_limit=128M\n", PHP_VERSION);
    $runs = array();
    foreach ($counts as $count) {
        $runs[] = array($count, 0);
    }
    $runs[] = array(20000, $facts);
    if (isset($options['group'])) {
        $runs[] = array(max($counts), 0, true);
    }
    foreach ($runs as $run) {
        list($count, $factCount) = $run;
        $group = !empty($run[2]);
        foreach ($trees as $name => $dir) {
            $command = array(PHP_BINARY, '-d', 'memory_limit=128M', __FILE__, '--child', '--module', $dir, '--accounts', (string) $count, '--facts', (string) $factCount);
            if ($group) {
                $command[] = '--group';
            }
            if (isset($options['real'])) {
                if ($factCount) {
                    continue; // the real host prints what the module decides
                }
                $command[] = '--real';
            }
            $pipes = array();
            $process = proc_open($command, array(1 => array('pipe', 'w'), 2 => array('pipe', 'w')), $pipes);
            $out = stream_get_contents($pipes[1]);
            $err = stream_get_contents($pipes[2]);
            proc_close($process);
            $line = trim($out) !== '' ? trim($out) : 'no output';
            if (preg_match('/(Allowed memory size of \d+ bytes exhausted[^\n]*)/', $out . $err, $m)) {
                $line = 'FATAL: ' . $m[1];
            }
            printf("%7d accounts%s, %-18s %s\n", $count, $factCount ? " with {$factCount} facts each" : ($group ? ', product names a group' : ''), $name . ':', $line);
        }
    }
    exec('rm -rf ' . escapeshellarg($before));
}

$options = getopt('', array('child', 'module:', 'accounts:', 'before:', 'facts:', 'real', 'group'));
exit(isset($options['child']) ? child((string) $options['module'], (int) $options['accounts'], (int) $options['facts'], isset($options['real']), isset($options['group'])) : (compare($options) ?: 0));
