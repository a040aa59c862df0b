<?php

use PHPUnit\Framework\TestCase;

/**
 * End to end: the PHP module drives the real hostbill-module-host, which runs the real CloudPe
 * component against the simulated CloudPe (`cloudpe-sim`). Needs HOSTBILL_MODULE_HOST_BIN,
 * CLOUDPE_COMPONENT and CLOUDPE_SIM_BIN (set by `cargo xtask test`). Apps, accounts and clients
 * live in the HostBill doubles, as HostBill stores them.
 */
class EndToEndTest extends TestCase
{
    const SESSION = 'php-e2e-session/token"0b7e';
    const ACCOUNTS = 300;
    const FIRST_UID = 1000;

    /** @var resource */
    private static $sim;
    /** @var string */
    private static $url;
    /** @var string a private compile cache for these tests (the host refuses shared folders) */
    private static $cache;

    public static function setUpBeforeClass(): void
    {
        foreach (array('HOSTBILL_MODULE_HOST_BIN', 'CLOUDPE_COMPONENT', 'CLOUDPE_SIM_BIN') as $name) {
            if (!getenv($name)) {
                self::markTestSkipped("{$name} is not set: run the PHP tests through `cargo xtask test`");
            }
        }
        $command = array(getenv('CLOUDPE_SIM_BIN'), '--generate', (string) self::ACCOUNTS, '--first-uid', (string) self::FIRST_UID, '--session', self::SESSION);
        $pipes = array();
        self::$sim = proc_open($command, array(1 => array('pipe', 'w'), 2 => array('file', '/dev/null', 'w')), $pipes);
        $line = fgets($pipes[1]);
        if (!preg_match('#^listening on (http://127\.0\.0\.1:\d+)#', (string) $line, $m)) {
            throw new RuntimeException('cloudpe-sim did not start: ' . var_export($line, true));
        }
        self::$url = $m[1];
        self::$cache = sys_get_temp_dir() . '/cloudpe-php-e2e-' . getmypid() . '-' . bin2hex(random_bytes(6)) . '/cache';
        mkdir(dirname(self::$cache), 0700);
    }

    public static function tearDownAfterClass(): void
    {
        if (is_resource(self::$sim)) {
            proc_terminate(self::$sim);
            proc_close(self::$sim);
        }
        if (self::$cache !== null && is_dir(dirname(self::$cache))) {
            exec('rm -rf ' . escapeshellarg(dirname(self::$cache)));
        }
    }

    protected function setUp(): void
    {
        HostBillDoubles::reset();
    }

    /** Builds every operation's host from the real binary and component, with the call's timeout. */
    private static function realHosts(cloudpe $module)
    {
        $module->useHostFactory(function ($connection, $timeout, $secrets) {
            return new cloudpe_host(getenv('HOSTBILL_MODULE_HOST_BIN'), getenv('CLOUDPE_COMPONENT'), $timeout, $secrets, self::$cache);
        });
        return $module;
    }

    /** Adds App `$id` pointing at the simulator, with `$custom` settings, and returns its row. */
    private static function app($id, array $custom = array(), $session = self::SESSION)
    {
        HbApps::add($id, "CloudPe sim {$id}", array('host' => '127.0.0.1', 'status_url' => self::$url, 'field1' => 'cluster', 'field2' => $session, 'secure' => '0'), $custom);
        $model = new HbServersModel();
        return $model->getServerDetails($id);
    }

    private function module(array $custom = array())
    {
        $module = self::realHosts(new cloudpe());
        $module->connect(self::app('7', $custom));
        return $module;
    }

    /** The simulated CloudPe's record of `$uid`, read over its API. */
    private function remote($uid)
    {
        $query = http_build_query(array('appid' => 'cluster', 'session' => self::SESSION, 'filterField' => 'uid', 'filterValue' => $uid));
        $reply = json_decode(file_get_contents(self::$url . '/1.0/billing/account/rest/getaccounts?' . $query), true);
        foreach ($reply['array'] as $account) {
            if ($account['uid'] === $uid) {
                return $account;
            }
        }
        return null;
    }

    /** The HostBill status CloudPe's record maps to. */
    private static function expected(array $account)
    {
        if ($account['status'] === 1) {
            return (isset($account['isEnabled']) && $account['isEnabled'] === false) ? 'Suspended' : 'Active';
        }
        return $account['status'] === 2 ? 'Suspended' : 'Terminated';
    }

    private function assertNoSession($text)
    {
        foreach (array(self::SESSION, substr(json_encode(self::SESSION), 1, -1), rawurlencode(self::SESSION), '0b7e') as $form) {
            $this->assertStringNotContainsString($form, $text);
        }
    }

    public function testSuspendAndUnsuspendChangeTheCloudpeUser()
    {
        $uid = self::FIRST_UID + 5;
        $module = $this->module();
        $module->account_details = array('id' => '1', 'client_id' => '21', 'server_id' => '7', 'status' => 'Active');
        ApiWrapper::$clients['21'] = array('cloudpeid' => (string) $uid);

        $this->assertTrue($module->Suspend(), implode('; ', $module->recordedErrors()));
        $this->assertSame(2, $this->remote($uid)['status']);
        $this->assertTrue($module->Unsuspend(), implode('; ', $module->recordedErrors()));
        $this->assertSame(1, $this->remote($uid)['status']);
        $this->assertStringContainsString("CloudPe user {$uid} set to status 1 (active)", $module->recordedInfos()[1]);
        $this->assertStringContainsString('CloudPe Module', HbLog::$lines[0][2]);
        $this->assertNoSession(HbLog::text());
    }

    /** Issue 9, break 2, end to end: "On terminate = deactivate", stored in `custom`, is honoured. */
    public function testTerminateFollowsTheAppsCustomPolicy()
    {
        $uid = self::FIRST_UID + 11;
        $module = $this->module(array('On terminate' => 'deactivate'));
        $module->account_details = array('id' => '3', 'client_id' => '23', 'server_id' => '7', 'status' => 'Active');
        ApiWrapper::$clients['23'] = array('cloudpeid' => (string) $uid);
        $this->assertSame(1, $this->remote($uid)['status'], 'precondition: the user is active');
        $this->assertTrue($module->Terminate(), implode('; ', $module->recordedErrors()));
        $this->assertSame(2, $this->remote($uid)['status'], 'deactivated on terminate');

        $other = self::FIRST_UID + 13;
        $module = $this->module(array());
        $module->account_details = array('id' => '4', 'client_id' => '24', 'server_id' => '7', 'status' => 'Active');
        ApiWrapper::$clients['24'] = array('cloudpeid' => (string) $other);
        $this->assertTrue($module->Terminate(), implode('; ', $module->recordedErrors()));
        $this->assertSame(1, $this->remote($other)['status'], 'the default policy makes no call');
    }

    public function testTheClientFieldCodeComesFromTheAppsCustomSettings()
    {
        $uid = self::FIRST_UID + 17;
        $module = $this->module(array('Client field code' => 'cpuser'));
        $module->account_details = array('id' => '5', 'client_id' => '25', 'server_id' => '7', 'status' => 'Active');
        ApiWrapper::$clients['25'] = array('cloudpeid' => '999999', 'cpuser' => (string) $uid);
        $this->assertTrue($module->Suspend(), implode('; ', $module->recordedErrors()));
        $this->assertSame(2, $this->remote($uid)['status']);
        $this->assertTrue($module->Unsuspend(), implode('; ', $module->recordedErrors()));
    }

    public function testCreateFailsClearlyWhenTheClientHasNoCloudpeId()
    {
        $module = $this->module();
        $module->account_details = array('id' => '2', 'client_id' => '22', 'server_id' => '7', 'status' => 'Pending');
        ApiWrapper::$clients['22'] = array('firstname' => 'No Id');
        $this->assertFalse($module->Create());
        $this->assertStringContainsString('client #22 has no `cloudpeid`', $module->recordedErrors()[0]);
    }

    /**
     * The daily cron through the real host: an unconnected module, two Apps (one with a rejected
     * token). The healthy App's accounts are synced and only changes written; the other is a line
     * in the output and the system log.
     */
    public function testTheDailyCronSyncsEveryAppAndWritesOnlyChanges()
    {
        self::app('7');
        self::app('8', array(), 'not-the-session/token');
        // HostBill believes every account of App 7 is Active; CloudPe has a mix.
        for ($i = 0; $i < self::ACCOUNTS; $i++) {
            ApiWrapper::$accounts[] = array('id' => (string) (5000 + $i), 'client_id' => (string) (9000 + intdiv($i, 2)), 'server_id' => '7', 'status' => 'Active');
            ApiWrapper::$clients[(string) (9000 + intdiv($i, 2))] = array('cloudpeid' => (string) (self::FIRST_UID + $i - ($i % 2)));
        }
        ApiWrapper::$accounts[] = array('id' => '6000', 'client_id' => '9000', 'server_id' => '7', 'status' => 'Pending');
        ApiWrapper::$accounts[] = array('id' => '6001', 'client_id' => '9000', 'server_id' => '8', 'status' => 'Active');
        ApiWrapper::$perPage = 50;
        $controller = new cloudpe_controller();
        $controller->module = self::realHosts(new cloudpe());
        $started = microtime(true);
        $output = $controller->call_Daily();
        $elapsed = microtime(true) - $started;

        $lines = explode("\n", $output);
        $this->assertCount(2, $lines, $output);
        $this->assertMatchesRegularExpression('/^App #7 "CloudPe sim 7": 300 accounts read, \d+ changed, \d+ unchanged, 0 skipped, 0 errors; \d+ CloudPe requests/', $lines[0]);
        // A rejected token fails each account's lookup: the line counts them and names the first.
        $this->assertMatchesRegularExpression('/^App #8 "CloudPe sim 8": 1 accounts read, 0 changed, 0 unchanged, 0 skipped, 1 errors; .*; first error: account #6001: CloudPe rejected the session token/', $lines[1]);
        $this->assertSame(150 + 1, ApiWrapper::count('getClientDetails'), 'one read per client and App');
        $expectedEdits = 0;
        $edits = array();
        foreach (ApiWrapper::$edits as $edit) {
            $edits[$edit['id']] = $edit['status'];
        }
        for ($i = 0; $i < self::ACCOUNTS; $i++) {
            $uid = self::FIRST_UID + $i - ($i % 2);
            $status = self::expected($this->remote($uid));
            $id = (string) (5000 + $i);
            if ($status !== 'Active') {
                $expectedEdits++;
                $this->assertSame($status, isset($edits[$id]) ? $edits[$id] : null, "account {$id}");
            } else {
                $this->assertArrayNotHasKey($id, $edits, 'unchanged accounts are not written');
            }
        }
        $this->assertCount($expectedEdits, ApiWrapper::$edits);
        $this->assertGreaterThan(0, $expectedEdits);
        $this->assertStringContainsString('sync App #8: account #6001: CloudPe rejected the session token', HbLog::text());
        $this->assertNoSession($output . HbLog::text());
        $this->assertStringNotContainsString('not-the-session/token', $output . HbLog::text());
        fwrite(STDERR, sprintf("\n[php e2e] cron:\n%s\n(%d statuses written, %.2f s whole call)\n", $output, $expectedEdits, $elapsed));
    }
}
