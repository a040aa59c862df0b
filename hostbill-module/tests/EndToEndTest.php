<?php

use PHPUnit\Framework\TestCase;

/**
 * End to end: the PHP module drives the real hostbill-module-host, which runs the real CloudPe
 * component against the simulated CloudPe (`cloudpe-sim`). Needs HOSTBILL_MODULE_HOST_BIN,
 * CLOUDPE_COMPONENT and CLOUDPE_SIM_BIN (set by `cargo xtask test`).
 */
class EndToEndTest extends TestCase
{
    const SESSION = 'php-e2e-session-token-0b7e';
    const ACCOUNTS = 300;
    const FIRST_UID = 1000;

    /** @var resource */
    private static $sim;
    /** @var string */
    private static $url;

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
    }

    public static function tearDownAfterClass(): void
    {
        if (is_resource(self::$sim)) {
            proc_terminate(self::$sim);
            proc_close(self::$sim);
        }
    }

    protected function setUp(): void
    {
        ApiWrapper::reset();
        HbLog::$lines = array();
    }

    private function module()
    {
        $module = new cloudpe();
        $module->connect(array('id' => 7, 'hostname' => '127.0.0.1', 'status_url' => self::$url, 'field1' => 'cluster', 'field2' => self::SESSION));
        $cache = sys_get_temp_dir() . '/cloudpe-php-e2e-cache';
        $module->useHost(new cloudpe_host(getenv('HOSTBILL_MODULE_HOST_BIN'), getenv('CLOUDPE_COMPONENT'), 120, $module->secrets(), $cache));
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

    public function testSuspendAndUnsuspendChangeTheCloudpeUser()
    {
        $uid = self::FIRST_UID + 5;
        $module = $this->module();
        $module->account_details = array('id' => 1, 'client_id' => 21, 'status' => 'Active');
        ApiWrapper::$clients[21] = array('cloudpeid' => (string) $uid);

        $this->assertTrue($module->Suspend(), implode('; ', $module->recordedErrors()));
        $this->assertSame(2, $this->remote($uid)['status']);
        $this->assertTrue($module->Unsuspend(), implode('; ', $module->recordedErrors()));
        $this->assertSame(1, $this->remote($uid)['status']);
        $this->assertStringContainsString("CloudPe user {$uid} set to status 1 (active)", $module->recordedInfos()[1]);
        $this->assertStringContainsString('CloudPe Module', HbLog::$lines[0][2]);
        $this->assertStringNotContainsString(self::SESSION, HbLog::text());
    }

    public function testAMissingCloudpeidIsReportedByTheRealModule()
    {
        $module = $this->module();
        $module->account_details = array('id' => 2, 'client_id' => 22, 'status' => 'Active');
        ApiWrapper::$clients[22] = array('firstname' => 'No Id');
        $this->assertFalse($module->Suspend());
        $this->assertStringContainsString('client #22 has no `cloudpeid`', $module->recordedErrors()[0]);
    }

    public function testTheDailyCronSyncsEveryAccountAndWritesOnlyChanges()
    {
        // HostBill believes every account is Active; CloudPe has a mix.
        for ($i = 0; $i < self::ACCOUNTS; $i++) {
            ApiWrapper::$accounts[] = array('id' => 5000 + $i, 'client_id' => 9000 + intdiv($i, 2), 'server_id' => 7, 'status' => 'Active');
            ApiWrapper::$clients[9000 + intdiv($i, 2)] = array('cloudpeid' => (string) (self::FIRST_UID + $i - ($i % 2)));
        }
        ApiWrapper::$perPage = 50;
        $controller = new cloudpe_controller();
        $controller->module = $this->module();
        $started = microtime(true);
        $summary = $controller->call_Daily();
        $elapsed = microtime(true) - $started;

        $this->assertSame(6, ApiWrapper::count('getAccounts'), '300 accounts in pages of 50');
        $this->assertSame(150, ApiWrapper::count('getClientDetails'), 'one read per client');
        $expectedEdits = 0;
        $edits = array();
        foreach (ApiWrapper::$edits as $edit) {
            $edits[$edit['id']] = $edit['status'];
        }
        for ($i = 0; $i < self::ACCOUNTS; $i++) {
            $uid = self::FIRST_UID + $i - ($i % 2);
            $status = self::expected($this->remote($uid));
            if ($status !== 'Active') {
                $expectedEdits++;
                $this->assertSame($status, isset($edits[5000 + $i]) ? $edits[5000 + $i] : null, "account " . (5000 + $i));
            } else {
                $this->assertArrayNotHasKey(5000 + $i, $edits, 'unchanged accounts are not written');
            }
        }
        $this->assertCount($expectedEdits, ApiWrapper::$edits);
        $this->assertGreaterThan(0, $expectedEdits);
        $this->assertMatchesRegularExpression('/^CloudPe sync: 300 accounts, \d+ updated, \d+ unchanged, 0 skipped, 0 errors; \d+ CloudPe requests/', $summary);
        $this->assertStringNotContainsString(self::SESSION, HbLog::text());
        fwrite(STDERR, sprintf("\n[php e2e] cron: %s (%d statuses written, %.2f s whole call)\n", $summary, $expectedEdits, $elapsed));
    }
}
