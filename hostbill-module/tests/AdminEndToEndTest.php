<?php

/**
 * Issue 13 end to end: what the admin sees, through the real hostbill-module-host and signed
 * component against the simulated CloudPe (see RealHostTestCase).
 */
class AdminEndToEndTest extends RealHostTestCase
{
    /** @var resource[] simulators this class started itself */
    private $own = array();

    protected static function requiredEnv()
    {
        return array_merge(parent::requiredEnv(), array('CLOUDPE_TRUSTED_KEYS'));
    }

    protected function tearDown(): void
    {
        foreach ($this->own as $sim) {
            self::stop($sim);
        }
        $this->own = array();
    }

    private static function realHosts(cloudpe $module)
    {
        $module->useHostFactory(function ($connection, $timeout, $secrets) {
            return new cloudpe_host(getenv('HOSTBILL_MODULE_HOST_BIN'), getenv('CLOUDPE_COMPONENT'), $timeout, $secrets, self::cache(), array(), getenv('CLOUDPE_TRUSTED_KEYS'));
        });
        return $module;
    }

    /** A simulator like the class's own, on `$port` (0: a free one); returns [process, url]. */
    private function startSim($port = 0)
    {
        $command = array(getenv('CLOUDPE_SIM_BIN'), '--generate', (string) self::ACCOUNTS, '--first-uid', (string) self::FIRST_UID, '--session', self::SESSION, '--port', (string) $port);
        $pipes = array();
        $process = proc_open($command, array(1 => array('pipe', 'w'), 2 => array('file', '/dev/null', 'w')), $pipes);
        $line = fgets($pipes[1]);
        if (!preg_match('#^listening on (http://127\.0\.0\.1:(\d+))#', (string) $line, $m)) {
            self::stop($process);
            throw new RuntimeException('cloudpe-sim did not start: ' . var_export($line, true));
        }
        $this->own[] = $process;
        return array($process, $m[1], (int) $m[2]);
    }

    private static function stop($process)
    {
        if (is_resource($process)) {
            proc_terminate($process);
            proc_close($process);
        }
    }

    /** The HostBill status CloudPe's record maps to. */
    private static function expected(array $account)
    {
        if ($account['status'] === 1) {
            return (isset($account['isEnabled']) && $account['isEnabled'] === false) ? 'Suspended' : 'Active';
        }
        return $account['status'] === 2 ? 'Suspended' : 'Terminated';
    }

    /** Item 2: the account page's CloudPe details come from one request to CloudPe. */
    public function testTheAccountPageShowsTheLinkedCloudpeUserFromOneRequest()
    {
        $module = self::realHosts(new cloudpe());
        $module->connect(self::app('7'));
        $checked = 0;
        for ($i = 0; $i < 40 && $checked < 2; $i++) {
            $uid = self::FIRST_UID + $i;
            $remote = $this->remote($uid);
            $changes = self::expected($remote) !== 'Active';
            if ($checked === 0 ? $changes : !$changes) {
                continue; // one account whose status is unchanged, then one that changes
            }
            HbLog::$lines = array();
            ApiWrapper::$clients[(string) (300 + $i)] = array('cloudpeid' => (string) $uid);
            $module->setAccount(array('id' => (string) (100 + $i), 'client_id' => (string) (300 + $i), 'server_id' => '7', 'status' => 'Active'));
            $this->assertNotFalse($module->getSynchInfo(), implode('; ', $module->recordedErrors()));
            $values = $module->detailValues();
            $this->assertSame((string) $uid, $values['cloudpe_uid']);
            $this->assertSame($remote['email'], $values['cloudpe_email']);
            $this->assertStringStartsWith($remote['status'] . ' (', $values['cloudpe_status']);
            $this->assertSame($remote['isEnabled'] === false ? 'locked' : 'enabled', $values['cloudpe_login']);
            $this->assertSame($remote['group']['name'], $values['cloudpe_group'], 'the group CloudPe has');
            $this->assertSame($remote['createdOn'], $values['cloudpe_created'], 'the creation date CloudPe has');
            $this->assertMatchesRegularExpression('/ UTC: ok, status /', $values['cloudpe_synced']);
            $this->assertMatchesRegularExpression('/sync of 1 account: ok; 1 request in /', HbLog::text(), 'one CloudPe request per view');
            $log = HBRegistry::$db->accountLog((string) (100 + $i));
            if ($changes) {
                $this->assertCount(1, $log);
                $this->assertSame(array('name' => 'status', 'from' => 'Active', 'to' => self::expected($remote)), $log[0]['change']['data'][0]);
                $this->assertContains(array('name' => 'cloudpe-uid', 'from' => '', 'to' => (string) $uid), $log[0]['change']['data']);
                $this->assertSame('ann.admin', $log[0]['admin_login']);
            } else {
                $this->assertSame(array(), $log, 'nothing written, nothing logged');
            }
            $this->assertNoSession(HbLog::text() . serialize($log) . implode("\n", $values));
            $checked++;
        }
        $this->assertSame(2, $checked);
    }

    /** Item 4: a suspend HostBill's automation ran during an outage succeeds on a later cron run. */
    public function testASuspendDuringAnOutageSucceedsOnALaterCronRunWithNoAdminAction()
    {
        list($sim, $url, $port) = $this->startSim();
        HbApps::add('9', 'CloudPe outage', array('host' => '127.0.0.1', 'status_url' => $url, 'field1' => 'cluster', 'field2' => self::SESSION, 'secure' => '0'), array());
        $uid = self::FIRST_UID + 42;
        $this->assertSame(1, $this->remote($uid)['status'], 'precondition: active');
        ApiWrapper::$accounts = array(array('id' => '77', 'client_id' => '41', 'server_id' => '9', 'status' => 'Active'));
        ApiWrapper::$clients['41'] = array('cloudpeid' => (string) $uid);
        $now = time();
        $queue = new cloudpe_retries(null, function () use (&$now) {
            return $now;
        });
        $module = self::realHosts(new cloudpe());
        $module->useRetries($queue);
        $module->connect((new HbServersModel())->getServerDetails('9'));
        $module->setAccount(ApiWrapper::$accounts[0]);

        self::stop($sim); // the outage
        HbAdmin::$logged = HbAdmin::NONE; // HostBill's automation runs the suspend
        $this->assertFalse($module->Suspend());
        $this->assertStringContainsString('could not reach CloudPe', $module->recordedErrors()[0]);
        $this->assertStringStartsWith('CloudPe module: queued: the CloudPe cron retries it after', $module->recordedErrors()[1]);

        $this->startSim($port); // CloudPe is back, on the same address
        $this->assertSame('CloudPe retries: nothing to do (no failed action is due for a retry)', cloudpe_retries::everyRun($module, null, null, $queue), 'not before its time');
        $now += cloudpe_retries::backoff(1);
        $output = cloudpe_retries::everyRun($module, null, null, $queue);
        $this->assertSame('CloudPe retries: account #77 suspend: succeeded on attempt 2; HostBill\'s accountSuspend recorded it (status Active -> Suspended)', $output);
        $this->assertSame(array(array('accountSuspend', '77', true)), ApiWrapper::$moduleActions, 'recorded by HostBill\'s own action');
        $remote = $this->remoteAt($url, $uid);
        $this->assertSame(2, $remote['status'], 'suspended on CloudPe');
        $this->assertSame('Suspended', ApiWrapper::$accounts[0]['status'], 'and recorded in HostBill');
        $log = HBRegistry::$db->accountLog('77');
        $this->assertCount(2, $log);
        $this->assertSame(array('Automation', '0', 'transport'), array($log[0]['admin_login'], $log[0]['result'], $log[0]['change']['data'][1]['to']));
        $this->assertSame(array('Automation', '1'), array($log[1]['admin_login'], $log[1]['result']));
        $this->assertContains(array('name' => 'cloudpe-status', 'from' => '', 'to' => '2 (inactive)'), $log[1]['change']['data']);
        $this->assertNull($queue->find('77'));
        $this->assertSame(array(), ApiWrapper::$tickets, 'no admin was needed');
        $this->assertNoSession(HbLog::text() . serialize(HBRegistry::$db->tables));
    }

    /** Item 5: with "Call log" on, each CloudPe call is a system-log line, the session masked. */
    public function testTheCallLogShowsEachCallWithTheSessionMasked()
    {
        $uid = self::FIRST_UID + 51;
        $module = self::realHosts(new cloudpe());
        $module->connect(self::app('7', array('Call log' => 'on')));
        $module->setAccount(array('id' => '5', 'client_id' => '51', 'server_id' => '7', 'status' => 'Active'));
        ApiWrapper::$clients['51'] = array('cloudpeid' => (string) $uid);
        $this->assertTrue($module->Unsuspend(), implode('; ', $module->recordedErrors()));
        $calls = array_values(array_filter(HbLog::$lines, function ($l) {
            return strpos($l[1], 'call: ') === 0;
        }));
        $this->assertNotEmpty($calls, HbLog::text());
        $this->assertMatchesRegularExpression('/^call: setaccountstatus \{.*"session":"\*{8}".*\} -> HTTP 200 in \d+ ms, result 0/', end($calls)[1]);
        $this->assertStringContainsString('"uid":"' . $uid . '"', end($calls)[1]);
        $this->assertNoSession(HbLog::text());

        HbLog::$lines = array();
        $module->connect(self::app('7'));
        $this->assertTrue($module->Unsuspend());
        $this->assertStringNotContainsString('call: ', HbLog::text(), 'off by default');
    }

    /** Item 1: the monthly reconciliation through the real host, against the simulator's users. */
    public function testTheMonthlyReconciliationFindsEachKindOfMismatch()
    {
        self::app('7');
        $shared = self::FIRST_UID + 60;
        $other = self::FIRST_UID + 61;
        ApiWrapper::$accounts = array(
            array('id' => '1', 'client_id' => '61', 'server_id' => '7', 'status' => 'Active'),     // no id
            array('id' => '2', 'client_id' => '62', 'server_id' => '7', 'status' => 'Active'),     // an id CloudPe lacks
            array('id' => '3', 'client_id' => '63', 'server_id' => '7', 'status' => 'Active'),     // shared ...
            array('id' => '4', 'client_id' => '63', 'server_id' => '7', 'status' => 'Terminated'), // ... by two accounts
            array('id' => '5', 'client_id' => '64', 'server_id' => '7', 'status' => 'Suspended'),  // another email
            array('id' => '6', 'client_id' => '65', 'server_id' => '7', 'status' => 'Active'),     // not a number
        );
        ApiWrapper::$clients = array(
            '61' => array('email' => 'none@example.com'),
            '62' => array('email' => 'gone@example.com', 'cloudpeid' => '99999999'),
            '63' => array('email' => $this->remote($shared)['email'], 'cloudpeid' => (string) $shared),
            '64' => array('email' => 'someone.else@example.com', 'cloudpeid' => (string) $other),
            '65' => array('email' => 'x@example.com', 'cloudpeid' => 'abc'),
        );
        $controller = new cloudpe_controller();
        $controller->module = self::realHosts(new cloudpe());
        $output = $controller->call_Monthly();
        $this->assertStringStartsWith('App #7 "CloudPe sim 7" reconciliation: 6 accounts, ' . self::ACCOUNTS . ' CloudPe users (', $output);
        $this->assertStringContainsString('; 2 without a valid CloudPe id: #1 (', $output);
        $this->assertStringContainsString('; 1 pointing at ids CloudPe does not have: #2 -> uid 99999999', $output);
        $this->assertStringContainsString("; 1 CloudPe users shared by 2+ accounts: uid {$shared} by #3+#4", $output);
        $this->assertStringContainsString('; ' . (self::ACCOUNTS - 2) . ' CloudPe users no account points at: uid ' . self::FIRST_UID . ' ', $output);
        $this->assertStringContainsString("; 1 email differences: #5 uid {$other}: HostBill someone.else@example.com, CloudPe " . $this->remote($other)['email'], $output);
        $this->assertSame(array(), ApiWrapper::$edits, 'read-only in HostBill');
        $this->assertNoSession($output . HbLog::text());
        fwrite(STDERR, "\n[php e2e] reconciliation:\n{$output}\n");
    }

    /** `$uid` as the simulator at `$url` has it. */
    private function remoteAt($url, $uid)
    {
        $query = http_build_query(array('appid' => 'cluster', 'session' => self::SESSION, 'filterField' => 'uid', 'filterValue' => $uid));
        $reply = json_decode(file_get_contents($url . '/1.0/billing/account/rest/getaccounts?' . $query), true);
        foreach ($reply['array'] as $account) {
            if ($account['uid'] === $uid) {
                return $account;
            }
        }
        return null;
    }
}
