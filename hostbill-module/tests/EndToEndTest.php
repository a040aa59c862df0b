<?php

/**
 * End to end with the component `cargo xtask test` built and signed: the PHP module drives the real
 * hostbill-module-host, which verifies the component against CLOUDPE_TRUSTED_KEYS and runs it
 * against the simulated CloudPe (see RealHostTestCase).
 */
class EndToEndTest extends RealHostTestCase
{
    /** The component must be signed by the key in CLOUDPE_TRUSTED_KEYS (`cargo xtask test` signs it). */
    protected static function requiredEnv()
    {
        return array_merge(parent::requiredEnv(), array('CLOUDPE_TRUSTED_KEYS'));
    }

    /** Builds every operation's host from the real binary and component, with the call's timeout. */
    private static function realHosts(cloudpe $module)
    {
        $module->useHostFactory(function ($connection, $timeout, $secrets) {
            return new cloudpe_host(getenv('HOSTBILL_MODULE_HOST_BIN'), getenv('CLOUDPE_COMPONENT'), $timeout, $secrets, self::cache(), array(), getenv('CLOUDPE_TRUSTED_KEYS'));
        });
        return $module;
    }

    private function module(array $custom = array())
    {
        $module = self::realHosts(new cloudpe());
        $module->connect(self::app('7', $custom));
        return $module;
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
        $module->setAccount(array('id' => '1', 'client_id' => '21', 'server_id' => '7', 'status' => 'Active'));
        ApiWrapper::$clients['21'] = array('cloudpeid' => (string) $uid);

        $this->assertTrue($module->Suspend(), implode('; ', $module->recordedErrors()));
        $this->assertSame(2, $this->remote($uid)['status']);
        $this->assertTrue($module->Unsuspend(), implode('; ', $module->recordedErrors()));
        $this->assertSame(1, $this->remote($uid)['status']);
        $infos = $module->recordedInfos();
        $this->assertStringContainsString("CloudPe user {$uid} set to status 1 (active)", $infos[2]);
        // The simulator speaks plain http: each action says the token crossed it unencrypted.
        $this->assertStringStartsWith('Warning: plain http: ', $infos[1]);
        $this->assertStringContainsString('"Session" crossed the network to ' . self::$url, $infos[3]);
        $this->assertStringContainsString('CloudPe Module', HbLog::$lines[0][2]);
        $this->assertMatchesRegularExpression('/system CloudPe Module: suspend of account #1: ok; [1-9]\\d* requests? in \\d+\\.\\d s/', HbLog::text(), 'the action\'s line carries the meter');
        $this->assertNoSession(HbLog::text());
    }

    /** Issue 12 §3 end to end: Test Connection shows what the signed module may do with this App. */
    public function testTestConnectionShowsWhatTheSignedModuleMayDo()
    {
        $module = $this->module();
        $this->assertTrue($module->testConnection(), implode('; ', $module->recordedErrors()));
        // A 2.4 component adds one line per capability after the checks (LifecycleEndToEndTest).
        $infos = array_values(array_filter($module->recordedInfos(), function ($info) {
            return strpos($info, 'CloudPe capability ') !== 0;
        }));
        $this->assertCount(3, $infos, implode("\n", $infos));
        $this->assertStringStartsWith('Warning: plain http: ', $infos[1]);
        $origin = self::$url;
        $this->assertMatchesRegularExpression('/^Module CloudPe \\d+\\.\\d+\\.\\d+ \\(signed by key [0-9a-f]{16}\\): may reach only ' . preg_quote($origin, '/') . ' \\(the Host URL\'s origin\\); '
            . 'reads Host URL, App Id, Session \\(secret\\), Client field code, On terminate, Call log, (On create, )?Usage time zone; limits: memory 128 MiB, deadline 108 s, responses 64 MiB, 16 connections/', $infos[2]);
        $this->assertNoSession(implode("\n", $infos) . HbLog::text());
    }

    /** Issue 9, break 2, end to end: "On terminate = deactivate", stored in `custom`, is honoured. */
    public function testTerminateFollowsTheAppsCustomPolicy()
    {
        $uid = self::FIRST_UID + 11;
        $module = $this->module(array('On terminate' => 'deactivate'));
        $module->setAccount(array('id' => '3', 'client_id' => '23', 'server_id' => '7', 'status' => 'Active'));
        ApiWrapper::$clients['23'] = array('cloudpeid' => (string) $uid);
        $this->assertSame(1, $this->remote($uid)['status'], 'precondition: the user is active');
        $this->assertTrue($module->Terminate(), implode('; ', $module->recordedErrors()));
        $this->assertSame(2, $this->remote($uid)['status'], 'deactivated on terminate');

        $other = self::FIRST_UID + 13;
        $module = $this->module(array());
        $module->setAccount(array('id' => '4', 'client_id' => '24', 'server_id' => '7', 'status' => 'Active'));
        ApiWrapper::$clients['24'] = array('cloudpeid' => (string) $other);
        $this->assertTrue($module->Terminate(), implode('; ', $module->recordedErrors()));
        $this->assertSame(1, $this->remote($other)['status'], 'the default policy makes no call');
    }

    public function testTheClientFieldCodeComesFromTheAppsCustomSettings()
    {
        $uid = self::FIRST_UID + 17;
        $module = $this->module(array('Client field code' => 'cpuser'));
        $module->setAccount(array('id' => '5', 'client_id' => '25', 'server_id' => '7', 'status' => 'Active'));
        ApiWrapper::$clients['25'] = array('cloudpeid' => '999999', 'cpuser' => (string) $uid);
        $this->assertTrue($module->Suspend(), implode('; ', $module->recordedErrors()));
        $this->assertSame(2, $this->remote($uid)['status']);
        $this->assertTrue($module->Unsuspend(), implode('; ', $module->recordedErrors()));
    }

    public function testCreateFailsClearlyWhenTheClientHasNoCloudpeId()
    {
        $module = $this->module();
        $module->setAccount(array('id' => '2', 'client_id' => '22', 'server_id' => '7', 'status' => 'Pending'));
        ApiWrapper::$clients['22'] = array('firstname' => 'No Id');
        $this->assertFalse($module->Create());
        // A 2.4 component would look the user up by email; this client has none to look by.
        $this->assertStringContainsString('client #22', $module->recordedErrors()[0]);
        $this->assertSame('', $module->savedDetails()['cloudpe_uid'], 'nothing linked');
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
        HbAdmin::$logged = HbAdmin::NONE; // HostBill's cron: no staff member logged in
        $controller = new cloudpe_controller();
        $controller->module = self::realHosts(new cloudpe());
        $started = microtime(true);
        $output = $controller->call_Daily();
        $elapsed = microtime(true) - $started;

        $lines = explode("\n", $output);
        $this->assertCount(2, $lines, $output);
        $this->assertMatchesRegularExpression('/^App #7 "CloudPe sim 7": 300 accounts read, \d+ changed, \d+ unchanged, 0 skipped, 0 errors; \d+ CloudPe requests/', $lines[0]);
        // A rejected token stops the App's sync with one error (issue 11 §3), after one request.
        $this->assertMatchesRegularExpression('/^App #8 "CloudPe sim 8": FAILED \(1 accounts read, 0 changed, 0 errors; 1 CloudPe requests in \d+\.\d s\): CloudPe rejected the session token/', $lines[1]);
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
                // Issue 13 §3: the write is in the account's own log, with who and the facts behind it.
                $log = HBRegistry::$db->accountLog($id);
                $this->assertCount(1, $log, "account {$id}'s log");
                $this->assertSame(array('Automation', '1', 'CloudPeSync'), array($log[0]['admin_login'], $log[0]['result'], $log[0]['event']));
                $this->assertSame(array('name' => 'status', 'from' => 'Active', 'to' => $status), $log[0]['change']['data'][0]);
                $this->assertContains(array('name' => 'cloudpe-uid', 'from' => '', 'to' => (string) $uid), $log[0]['change']['data']);
            } else {
                $this->assertSame(array(), HBRegistry::$db->accountLog($id), 'nothing written, nothing logged');
                $this->assertArrayNotHasKey($id, $edits, 'unchanged accounts are not written');
            }
        }
        $this->assertCount($expectedEdits, ApiWrapper::$edits);
        $this->assertGreaterThan(0, $expectedEdits);
        $this->assertStringContainsString('sync failed (authentication): CloudPe rejected the session token', HbLog::text());
        $this->assertNoSession($output . HbLog::text());
        $this->assertStringNotContainsString('not-the-session/token', $output . HbLog::text());
        fwrite(STDERR, sprintf("\n[php e2e] cron:\n%s\n(%d statuses written, %.2f s whole call)\n", $output, $expectedEdits, $elapsed));
    }

    /**
     * Issue 25 item 6: CloudPe refusing connections fails the App with one clear error, whatever
     * the strategy: 2,000 accounts (the default plan pages), not 2,000 per-account errors.
     */
    public function testAnUnreachableCloudpeFailsTheWholeAppAtOnce()
    {
        $port = self::freePort();
        HbApps::add('9', 'CloudPe down', array('host' => '127.0.0.1', 'status_url' => "http://127.0.0.1:{$port}", 'field1' => 'cluster', 'field2' => self::SESSION, 'secure' => '0'), array());
        for ($i = 0; $i < 2000; $i++) {
            ApiWrapper::$accounts[] = array('id' => (string) (7000 + $i), 'client_id' => (string) (8000 + $i), 'server_id' => '9', 'status' => 'Active');
            ApiWrapper::$clients[(string) (8000 + $i)] = array('cloudpeid' => (string) (self::FIRST_UID + $i));
        }
        ApiWrapper::$perPage = 500;
        $controller = new cloudpe_controller();
        $controller->module = self::realHosts(new cloudpe());
        $output = $controller->call_Daily();
        $this->assertMatchesRegularExpression('/^App #9 "CloudPe down": FAILED \(2000 accounts read, 0 changed, 0 errors; \d+ CloudPe requests in \d+\.\d s\): CloudPe at http:\/\/127\.0\.0\.1:' . $port . ' is unreachable: .*connection refused/', $output);
        $this->assertStringNotContainsString('account #', HbLog::text(), 'no per-account error');
        $this->assertSame(array(), ApiWrapper::$edits);
        $this->assertNoSession($output . HbLog::text());
    }

    /** A TCP port on 127.0.0.1 that nobody listens on (bound, then released). */
    private static function freePort()
    {
        $socket = stream_socket_server('tcp://127.0.0.1:0');
        $name = stream_socket_get_name($socket, false);
        fclose($socket);
        return (int) substr($name, strrpos($name, ':') + 1);
    }
}
