<?php

/*
 * Issue 25 item 5, the figures: 20 suspends that HostBill's automation runs while CloudPe of
 * one App is down, then HostBill's cron every 5 minutes for 3 days (864 every-run tasks), against
 * the HostBill doubles and the fake host (each run of the host answers "transport: connection
 * refused" at once). Prints the internal tickets, admin notes, ticket-notes updates and
 * system-log lines (all, and errors) this leaves, and what one every-run task may take while
 * CloudPe hangs instead: the sum, over the retries it starts, of PHP's timeout for each and of
 * the deadline the host is given (a hanging CloudPe holds each retry until the host's deadline).
 *
 *   php hostbill-module/tests/bench/outage.php
 *
 * It uses only what both the module before issue 25 and after it offer, so the same file runs
 * against either tree (copy it into the other tree's tests/bench/).
 */

require __DIR__ . '/../doubles.php';
require __DIR__ . '/../../includes/modules/Hosting/cloudpe/class.cloudpe.php';

HostBillDoubles::reset();
$dir = sys_get_temp_dir() . '/cloudpe-outage-' . getmypid();
@mkdir($dir . '/keys', 0700, true);
file_put_contents($dir . '/keys/vendor.pub', "not read by the fake host\n");
file_put_contents($dir . '/module.wasm', 'not read by the fake host');
$report = $dir . '/report.json';
file_put_contents($report, json_encode(array('ok' => false, 'operation' => 'suspend', 'error' => array('kind' => 'transport', 'message' => 'could not reach CloudPe at https://eu.cloudpe.example:443 for setaccountstatus: connection refused', 'code' => null), 'logs' => array())));

$now = 1796000000;
$queue = new cloudpe_retries(null, function () use (&$now) {
    return $now;
});
if (method_exists($queue, 'createTables')) {
    $queue->createTables(); // as install()/upgrade() do
}
HbApps::add('4', 'CloudPe EU', array('status_url' => 'https://eu.cloudpe.example', 'field1' => 'cluster', 'field2' => 'bench-session-token'), array());
ApiWrapper::$clients['11'] = array('cloudpeid' => '1234');
HbAdmin::$logged = HbAdmin::NONE;

/** @var array[] every host started: [every-run number (0: the actions), PHP timeout, host deadline] */
$hosts = array();
$current = 0;
$module = new cloudpe();
$module->useHostFactory(function ($connection, $timeout) use (&$hosts, &$current, $dir, $report) {
    $host = new cloudpe_host(dirname(__DIR__) . '/fixtures/fake-host', $dir . '/module.wasm', $timeout, array('bench-session-token'), null, array(
        'FAKE_HOST_MODE' => 'report', 'FAKE_HOST_EXIT' => '1', 'FAKE_HOST_REPORT' => $report,
    ));
    $hosts[] = array($current, (float) $timeout, (float) $host->deadline());
    return $host;
});
$module->useRetries($queue);

$accounts = 20;
for ($i = 1; $i <= $accounts; $i++) {
    $row = array('id' => (string) (200 + $i), 'client_id' => '11', 'server_id' => '4', 'status' => 'Active');
    ApiWrapper::$accounts[] = $row;
    $action = clone $module;
    $action->connect((new HbServersModel())->getServerDetails('4'));
    if (method_exists($action, 'setAccount')) {
        $action->setAccount($row);
    } else {
        $action->account_details = $row;
    }
    $action->Suspend();
}
$afterActions = count(HbLog::$lines);

$runs = 3 * 24 * 12;
for ($current = 1; $current <= $runs; $current++) {
    $now += 300;
    cloudpe_retries::everyRun($module, null, null, $queue);
}

$perRun = array();
foreach ($hosts as $h) {
    if ($h[0] > 0) {
        if (!isset($perRun[$h[0]])) {
            $perRun[$h[0]] = array(0, 0.0, 0.0);
        }
        $perRun[$h[0]][0]++;
        $perRun[$h[0]][1] += $h[1];
        $perRun[$h[0]][2] += $h[2];
    }
}
$worst = array(0, 0.0, 0.0);
foreach ($perRun as $r) {
    if ($r[1] > $worst[1]) {
        $worst = $r;
    }
}
$lines = array_slice(HbLog::$lines, $afterActions);
$errors = count(array_filter($lines, function ($l) {
    return $l[0] === 'error';
}));
$given = 0;
foreach (HBRegistry::$db->tables['hb_cloudpe_retries'] as $row) {
    $given += $row['state'] === 'given-up' ? 1 : 0;
}
printf("%d automation suspends failed (CloudPe of App #4 down), then %d every-run tasks (3 days, every 5 min)\n", $accounts, $runs);
printf("  retries run: %d; rows given up: %d of %d\n", count($hosts) - $accounts, $given, $accounts);
printf("  internal tickets: %d; admin notes: %d; ticket-notes updates: %d\n", count(ApiWrapper::$tickets), count(ApiWrapper::$notes), count(ApiWrapper::calls('addTicketNotes')));
printf("  system-log lines from the cron: %d (errors: %d)\n", count($lines), $errors);
printf("  every-run task while CloudPe hangs, worst run: %d retries started; up to %.0f s of PHP timeouts, %.0f s of host deadlines\n", $worst[0], $worst[1], $worst[2]);
exec('rm -rf ' . escapeshellarg($dir));
