#!/usr/bin/env -S php -d memory_limit=-1
<?php
/*
 * The benchmark's stand-in for hostbill-module-host's `sync` (its own process: its memory is not
 * the module's). Reads the request, then prints a streamed sync's report as the host does
 * (host/src/report/stream.rs: `operation`, `module`, the decisions one by one, then the members
 * known only at the end), for the accounts it was sent: 2% change (with the six facts of a
 * CloudPe user), 0.5% error, the rest unchanged without facts (`--omit-unchanged-facts`).
 * With BENCH_FACTS=N in its environment, every unchanged decision carries N facts instead (issue
 * 24 item 8: a large but allowed report of many small facts). Without `--omit-unchanged-facts`
 * in its arguments, every unchanged decision carries the six facts of a CloudPe user, its
 * `cloudpe-group` BENCH_GROUP for nine accounts in ten and `default` for the tenth (issue 23:
 * the sync compares it with the product's group). `info` answers a minimal report.
 */
$facts = (int) getenv('BENCH_FACTS');
$group = (string) getenv('BENCH_GROUP');
$omit = in_array('--omit-unchanged-facts', $argv, true);
$operation = isset($argv[1]) ? $argv[1] : '';
$request = json_decode(stream_get_contents(STDIN), true);
if ($operation !== 'sync' || !isset($request['accounts'])) {
    echo json_encode(array('ok' => true, 'operation' => $operation, 'logs' => array())), "\n";
    exit(0);
}
$out = fopen('php://stdout', 'wb');
fwrite($out, '{"operation":"sync","module":{"name":"cloudpe","version":"2.2.0"},"decisions":[');
$buffer = '';
$change = 0;
$errors = 0;
foreach ($request['accounts'] as $i => $account) {
    $uid = isset($account['custom_fields']['cloudpeid']) ? $account['custom_fields']['cloudpeid'] : '0';
    if ($i % 50 === 7) {
        $to = $account['status'] === 'Active' ? 'Suspended' : 'Active';
        $decision = array('account_id' => (int) $account['id'], 'decision' => 'change', 'from' => $account['status'], 'to' => $to, 'facts' => array(
            'cloudpe-uid' => (string) $uid, 'cloudpe-email' => "user{$uid}@example.com", 'cloudpe-status' => $to === 'Active' ? '1' : '2',
            'cloudpe-login' => "user{$uid}@example.com", 'cloudpe-group' => 'default', 'cloudpe-created' => '2024-05-01 10:00:00',
        ));
        $change++;
    } elseif ($i % 200 === 13) {
        $decision = array('account_id' => (int) $account['id'], 'decision' => 'error', 'error' => array('kind' => 'not-found', 'message' => "CloudPe has no user with uid {$uid} (client #{$account['client_id']}): HostBill left unchanged", 'code' => null));
        $errors++;
    } else {
        $decision = array('account_id' => (int) $account['id'], 'decision' => 'unchanged');
        if (!$omit && $facts === 0) {
            $decision['facts'] = array(
                'cloudpe-uid' => (string) $uid, 'cloudpe-email' => "user{$uid}@example.com", 'cloudpe-status' => '1',
                'cloudpe-login' => "user{$uid}@example.com", 'cloudpe-group' => ($i % 10 === 3 || $group === '') ? 'default' : $group, 'cloudpe-created' => '2024-05-01 10:00:00',
            );
        }
        for ($f = 0; $f < $facts; $f++) {
            $decision['facts']["cloudpe-fact-{$f}"] = (string) ($uid + $f);
        }
    }
    $buffer .= ($i === 0 ? '' : ',') . json_encode($decision);
    if (strlen($buffer) > 65536) {
        fwrite($out, $buffer);
        $buffer = '';
    }
}
$count = count($request['accounts']);
fwrite($out, $buffer . '],"ok":true,"dry_run":false,"summary":' . json_encode(array(
    'accounts' => $count, 'change' => $change, 'unchanged' => $count - $change - $errors, 'skipped' => 0, 'error' => $errors,
    'requests' => intdiv($count, 100) + 1, 'elapsed_ms' => 1000,
)) . ',"logs":[],"meter":{"wall_ms":1000,"requests":' . (intdiv($count, 100) + 1) . ',"bytes_received":0,"peak_memory_bytes":0}}' . "\n");
exit(0);
