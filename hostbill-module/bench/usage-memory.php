<?php
/*
 * Peak PHP memory and time of the hourly usage import of one large App (issue 22), under
 * memory_limit=128M:
 *
 *   php -d memory_limit=128M hostbill-module/bench/usage-memory.php [--accounts 10000] [--hours 1]
 *
 * One App with N Active accounts (product 3, metered variable cloudpeCost), each with `--hours`
 * billable hours in the window; the host is tests/fixtures/fake-usage-host printing the usage
 * report (streamed: PHP reads its rows one by one); HostBill's side is the test doubles and the
 * tests' MariaDB (CLOUDPE_TEST_DB_DSN, or a private server started for the run), where the ledger,
 * the cursors and HostBill's usage rows are written. Prints the peak PHP memory
 * (memory_get_peak_usage), the report's size, the time, and the App's cron line. The doubles'
 * own account rows and call list stay in PHP's memory (in HostBill they are in its database), so
 * the figure is an upper bound for the module.
 */
$options = getopt('', array('accounts:', 'hours:'));
$count = isset($options['accounts']) ? (int) $options['accounts'] : 10000;
$hours = isset($options['hours']) ? max(1, min(24, (int) $options['hours'])) : 1;
$tests = dirname(__DIR__) . '/tests';
require $tests . '/doubles.php';
require dirname(__DIR__) . '/includes/modules/Hosting/cloudpe/class.cloudpe.php';
date_default_timezone_set('UTC');
HostBillDoubles::reset();
HbAdmin::$logged = HbAdmin::NONE;
(new cloudpe_retries())->createTables();
cloudpe_usage::createTables();
$work = sys_get_temp_dir() . '/cloudpe-usage-bench-' . getmypid();
mkdir($work . '/keys', 0700, true);
file_put_contents($work . '/module.wasm', 'not read by the fake host');
file_put_contents($work . '/keys/vendor.pub', "-----BEGIN PUBLIC KEY-----\nnot read\n-----END PUBLIC KEY-----\n");
HbApps::add('4', 'CloudPe EU', array('host' => 'eu.cloudpe.example', 'status_url' => 'https://eu.cloudpe.example', 'field1' => 'cluster', 'field2' => 'bench-token-0123456789'), array('Usage import' => 'on'));
ApiWrapper::$perPage = 100;
for ($i = 1; $i <= $count; $i++) {
    ApiWrapper::$accounts[] = array('id' => (string) (1000 + $i), 'client_id' => '11', 'server_id' => '4', 'product_id' => '3', 'status' => 'Active');
}
ApiWrapper::$clients = array('11' => array('cloudpeid' => '12'));
ApiWrapper::$meteredVariables = array('3' => array(array('id' => '21', 'product_id' => '3', 'name' => 'CloudPe usage', 'variable_name' => 'cloudpeCost', 'unit_name' => 'currency unit', 'cycle' => 'Monthly', 'scheme' => 'tiered', 'options' => '0')));
$now = gmmktime(12, 15, 0, 12, 6, 2026);
$default = array();
for ($h = $hours; $h >= 1; $h--) {
    $default[] = array('start' => cloudpe_usage::iso(cloudpe_usage::untilFor($now) - $h * 3600), 'cost' => '0.1234', 'bonus' => '0.0234', 'facts' => array('resource_cost' => '0.08', 'storage_cost' => '0.02', 'traffic_cost' => '0.0234', 'rows' => '3'));
}
file_put_contents("{$work}/plan.json", json_encode(array('accounts' => new stdClass(), 'default_hours' => $default)));
$env = array('FAKE_USAGE_PLAN' => "{$work}/plan.json", 'FAKE_HOST_STDIN' => "{$work}/stdin.json");
$module = new cloudpe();
$module->useHostFactory(function ($connection, $timeout) use ($work, $env) {
    $host = new cloudpe_host(dirname(__DIR__) . '/tests/fixtures/fake-usage-host', $work . '/module.wasm', $timeout, array('bench-token-0123456789'), null, $env);
    return $host;
});
$baseline = memory_get_usage();
// What the doubles keep of each call is HostBill's, not the module's: emptied as the import goes.
$start = microtime(true);
$line = cloudpe_usage::hourly($module, null, null, function () use ($now) {
    ApiWrapper::$calls = array();
    HBRegistry::$db->log = array();
    return $now;
});
$seconds = microtime(true) - $start;
$peak = memory_get_peak_usage();
$rows = (int) HBRegistry::$db->query('SELECT COUNT(*) FROM ' . HbMetered::TABLE)->fetchColumn();
printf("%d accounts, %d hour(s) each: peak PHP memory %.1f MiB (memory_limit %s; %.1f MiB of it before the import: the doubles' %d account rows), %.1f s, request %.1f MiB, %d usage rows in HostBill\n%s\n",
    $count, $hours, $peak / 1048576, ini_get('memory_limit'), $baseline / 1048576, $count, $seconds, filesize("{$work}/stdin.json") / 1048576, $rows, $line);
array_map('unlink', glob("{$work}/keys/*"));
rmdir("{$work}/keys");
array_map('unlink', glob("{$work}/*"));
rmdir($work);
