<?php

/**
 * Issue 25: the retry queue under HostBill's strict base class (setAccount), stale intents, long
 * outages and the every-run task's time budget, against the HostBill doubles.
 */
class RetryTest extends FakeHostTestCase
{
    /** @var int the queue's clock (Unix time) */
    private $now = 1796000000;
    /** @var float the budget's clock (seconds) */
    private $elapsed = 0.0;
    /** @var float seconds each host run takes on the budget's clock */
    private $hostSeconds = 0.0;
    /** @var array<string, bool> App id => CloudPe of that App is down */
    private $down = array();
    /** @var array[] every host run: [App id, operation, timeout] */
    private $runs = array();

    protected function setUp(): void
    {
        parent::setUp();
        $this->now = 1796000000;
        $this->elapsed = 0.0;
        $this->hostSeconds = 0.0;
        $this->down = array();
        $this->runs = array();
        HbAdmin::$logged = HbAdmin::NONE;
        foreach (array('4' => 'CloudPe EU', '5' => 'CloudPe US') as $id => $name) {
            HbApps::add($id, $name, array('status_url' => "https://{$id}.cloudpe.example", 'field1' => 'cluster', 'field2' => self::TOKEN), array());
        }
        ApiWrapper::$clients['11'] = array('cloudpeid' => '1234');
    }

    private function queue()
    {
        return new cloudpe_retries(null, function () {
            return $this->now;
        }, function () {
            return $this->elapsed;
        });
    }

    /** A module whose hosts answer as the App's CloudPe is (up or down), taking $hostSeconds. */
    private function outageModule()
    {
        $module = new cloudpe();
        $module->useHostFactory(function ($connection, $timeout) {
            $app = (string) $connection['id'];
            $n = count($this->runs) + 1;
            $request = null;
            $this->elapsed += $this->hostSeconds;
            $report = !empty($this->down[$app])
                ? self::report('suspend', array('error' => array('kind' => 'transport', 'message' => "could not reach CloudPe of App {$app}: connection refused (session " . self::TOKEN . ')', 'code' => null)))
                : self::report('suspend', array('outcome' => array('message' => 'CloudPe user 1234 set to status 2 (inactive)', 'facts' => array('cloudpe-status' => '2 (inactive)'))));
            $this->runs[] = array($app, null, $timeout);
            return $this->fakeHost('report', $report, empty($this->down[$app]) ? 0 : 1, $timeout, "run{$n}");
        });
        $module->useRetries($this->queue());
        return $module;
    }

    /** Account `$id` of App `$app` in `$status`, run by HostBill's automation with `$operation`. */
    private function act($id, $app, $status, $operation)
    {
        $row = array('id' => (string) $id, 'client_id' => '11', 'server_id' => (string) $app, 'status' => $status);
        $found = false;
        foreach (ApiWrapper::$accounts as $i => $existing) {
            if ($existing['id'] === (string) $id) {
                ApiWrapper::$accounts[$i] = $row;
                $found = true;
            }
        }
        if (!$found) {
            ApiWrapper::$accounts[] = $row;
        }
        $module = $this->outageModule();
        $module->connect((new HbServersModel())->getServerDetails($app));
        $module->setAccount($row);
        return $module->$operation();
    }

    private function everyRun($budget = cloudpe_retries::EVERY_RUN_BUDGET)
    {
        return cloudpe_retries::everyRun($this->outageModule(), null, null, $this->queue(), $budget);
    }

    private function status($id)
    {
        foreach (ApiWrapper::$accounts as $row) {
            if ($row['id'] === (string) $id) {
                return $row['status'];
            }
        }
        return null;
    }

    // ---- item 1 ----

    public function testTheAccountIsHandedOverWithSetAccountAsHostBillsPropertyIsProtected()
    {
        $property = new ReflectionProperty('HostingModule', 'account_details');
        $this->assertTrue($property->isProtected(), 'the doubles are as strict as HostBill\'s encoded class is taken to be');
        $this->down['4'] = true;
        $this->assertFalse($this->act('101', '4', 'Active', 'Suspend'));
        $this->down['4'] = false;
        $this->now += 300;
        $this->assertSame('CloudPe retries: account #101 suspend: succeeded on attempt 2; HostBill\'s accountSuspend recorded it (status Active -> Suspended)', $this->everyRun());
        $this->assertStringNotContainsString('Cannot access protected property', HbLog::text());
    }

    // ---- item 2 ----

    public function testAStaffActionThatFailsStillSupersedesTheQueuedOne()
    {
        $this->down['4'] = true;
        $this->assertFalse($this->act('101', '4', 'Active', 'Suspend'), 'automation\'s suspend, queued');
        $this->assertSame('suspend', $this->queue()->find('101')['operation']);
        HbAdmin::$logged = HbAdmin::STAFF; // the client paid; staff unsuspend by hand, CloudPe still down
        $this->assertFalse($this->act('101', '4', 'Active', 'Unsuspend'));
        $this->assertNull($this->queue()->find('101'), 'the staff\'s later action supersedes the queued suspend');
        $log = HBRegistry::$db->accountLog('101');
        $this->assertSame('CloudPe: queued suspend (queued, 1 failures) dropped: superseded by ann.admin\'s unsuspend (failed)', $log[1]['action']);
        $this->down['4'] = false;
        $this->now += 100000;
        $this->assertStringContainsString('nothing to do', $this->everyRun());
        $this->assertSame('Active', $this->status('101'), 'the paid account is not suspended hours later');
    }

    public function testALaterTerminateByAutomationSupersedesTheQueuedOne()
    {
        $this->down['4'] = true;
        $this->assertFalse($this->act('101', '4', 'Active', 'Suspend'));
        $this->assertFalse($this->act('101', '4', 'Active', 'Terminate'), 'not queued itself: terminate is not retried');
        $this->assertNull($this->queue()->find('101'));
        $this->assertSame('CloudPe: queued suspend (queued, 1 failures) dropped: superseded by Automation\'s terminate (failed)', HBRegistry::$db->accountLog('101')[1]['action']);
    }

    public function testAQueuedSuspendIsDroppedWhenTheAccountIsNoLongerActive()
    {
        $this->down['4'] = true;
        $this->assertFalse($this->act('101', '4', 'Active', 'Suspend'));
        ApiWrapper::$accounts[0]['status'] = 'Suspended'; // set by hand in HostBill meanwhile
        $this->down['4'] = false;
        $this->now += 300;
        $runs = count($this->runs);
        $this->assertSame('CloudPe retries: account #101 suspend: dropped, no longer wanted (the account is Suspended now, and a queued suspend acts only on a Active account)', $this->everyRun());
        $this->assertCount($runs, $this->runs, 'CloudPe is not called');
        $this->assertNull($this->queue()->find('101'));
        $this->assertSame(array(), ApiWrapper::$moduleActions);
    }

    /** What HostBill logs on account 101 (another module, or none) `$seconds` after now. */
    private static function logged($seconds, $action)
    {
        $date = date('Y-m-d H:i:s', time() + $seconds);
        $ok = HBRegistry::$db->prepare('INSERT INTO hb_account_logs (`date`, `account_id`, `admin_login`, `module`, `manual`, `action`, `change`, `result`, `error`) VALUES (:d, :a, :l, :m, :n, :c, :g, :r, :e)')->execute(array(
            ':d' => $date, ':a' => '101', ':l' => 'ann.admin', ':m' => '', ':n' => '1', ':c' => $action, ':g' => '', ':r' => '1', ':e' => '',
        ));
        if (!$ok) {
            throw new LogicException('the account log refused the row');
        }
        return $date;
    }

    public function testAQueuedSuspendIsDroppedWhenSomeoneElseChangedTheAccountSince()
    {
        $this->down['4'] = true;
        $this->assertFalse($this->act('101', '4', 'Active', 'Suspend'));
        self::logged(1, 'Suspend failed'); // HostBill's own record of the same failed action
        $this->down['4'] = false;
        $this->now += 300;
        $this->assertStringContainsString('succeeded on attempt 2', $this->everyRun(), 'a row of the same action is not a later change');

        $this->down['4'] = true;
        ApiWrapper::$accounts[0]['status'] = 'Active';
        $this->assertFalse($this->act('101', '4', 'Active', 'Suspend'));
        $date = self::logged(3600, 'Next due date changed'); // the client paid an hour later
        $this->down['4'] = false;
        $this->now += 300;
        $this->assertSame("CloudPe retries: account #101 suspend: dropped, no longer wanted (ann.admin changed the account since ({$date}: Next due date changed))", $this->everyRun());
        $this->assertSame('Active', $this->status('101'));
        $this->assertCount(1, ApiWrapper::$moduleActions, 'only the first replay ran');
    }

    public function testWhenHostBillRefusesItsOwnActionTheStatusIsRecordedDirectly()
    {
        $this->down['4'] = true;
        $this->assertFalse($this->act('101', '4', 'Active', 'Suspend'));
        $this->down['4'] = false;
        $this->now += 300;
        $api = new class extends ApiWrapper {
            public function accountSuspend($params)
            {
                return array('success' => false, 'error' => array('Account is locked by another task'));
            }
        };
        $output = cloudpe_retries::everyRun($this->outageModule(), null, $api, $this->queue());
        $this->assertSame('CloudPe retries: account #101 suspend: succeeded on attempt 2; HostBill\'s accountSuspend did not run the module; status Active -> Suspended recorded with editAccountDetails', $output);
        $this->assertSame(array(array('id' => '101', 'status' => 'Suspended')), ApiWrapper::$edits);
        $this->assertNull(cloudpe_retries::takeReplayed('101', 'suspend'), 'nothing is left for a later action to mistake for a replay');
    }

    // ---- item 5 ----

    /**
     * 20 automation suspends fail during a long outage of App 4 (App 5 is fine): one alert for the
     * App, updated as accounts give up, noted on recovery; one host run per App and cron run.
     */
    public function testALongOutageIsOneAlertPerAppUpdatedAndNotedOnRecovery()
    {
        $this->down['4'] = true;
        for ($i = 1; $i <= 20; $i++) {
            $this->assertFalse($this->act((string) (200 + $i), '4', 'Active', 'Suspend'));
        }
        $this->assertTrue($this->act('300', '5', 'Active', 'Suspend'), 'App 5 answers');
        $this->down['5'] = true;
        $this->assertFalse($this->act('301', '5', 'Active', 'Suspend'));
        $this->down['5'] = false;
        $logLines = count(HbLog::$lines);
        for ($run = 1; $run <= 100; $run++) {
            $this->now += cloudpe_retries::MAX_BACKOFF_SECONDS;
            $before = count($this->runs);
            $output = $this->everyRun();
            $apps = array_count_values(array_column(array_slice($this->runs, $before), 0));
            $this->assertLessThanOrEqual(1, isset($apps['4']) ? $apps['4'] : 0, "run {$run}: one try of App 4, the others wait:\n{$output}");
        }
        $this->assertSame('CloudPe retries: nothing to do (no failed action is due for a retry)', $output, 'every queued suspend of App 4 gave up');
        $this->assertSame('Suspended', $this->status('301'), 'the other App\'s retry ran');
        $this->assertCount(1, ApiWrapper::$tickets, 'one alert for the outage');
        $this->assertStringStartsWith('CloudPe: App #4 failing since ', ApiWrapper::$tickets[0]['subject']);
        $notes = ApiWrapper::$ticketNotes['701'];
        $this->assertStringContainsString('20 queued actions stopped after 5 failures: #', $notes, 'the alert is updated, not repeated');
        $errors = array_filter(array_slice(HbLog::$lines, $logLines), function ($l) {
            return $l[0] === 'error';
        });
        $opened = array_filter($errors, function ($l) {
            return strpos($l[1], 'CloudPe App #4: CloudPe failed for the retries since') === 0;
        });
        $this->assertCount(1, $opened, 'one line opens the outage');
        $this->assertCount(3, $errors, "the first failed retry's line, the outage's, the alert's; each retry's error is in its account's log:\n" . implode("\n", array_column($errors, 1)));
        $this->assertStringContainsString('could not reach CloudPe of App 4', HBRegistry::$db->accountLog('220')[3]['error']);

        // CloudPe is back; the staff run the first stopped suspend again, as the alert says.
        $this->down['4'] = false;
        HbAdmin::$logged = HbAdmin::STAFF;
        $this->assertTrue($this->act('201', '4', 'Active', 'Suspend'));
        $this->assertNull($this->queue()->outage('4'), 'closed');
        $this->assertStringStartsWith('Resolved: CloudPe of App #4 answered again at ', ApiWrapper::$ticketNotes['701']);
        $this->assertStringContainsString('stopped actions to run again on their account pages: #', ApiWrapper::$ticketNotes['701']);
        $this->assertStringContainsString('system CloudPe Module: CloudPe of App #4 answered again at', HbLog::text());
        $this->assertNoToken($this->outageModule(), $output . serialize(ApiWrapper::$tickets) . serialize(ApiWrapper::$ticketNotes) . serialize(HBRegistry::$db->tables));
    }

    /** Hosts that each take 100 s: the every-run task stops at its budget and says what waits. */
    public function testTheEveryRunTaskKeepsToItsTimeBudget()
    {
        $this->down['4'] = true;
        foreach (array('201', '202', '203') as $id) {
            $this->assertFalse($this->act($id, '4', 'Active', 'Suspend'));
        }
        $this->down['4'] = false;
        $this->now += 300;
        $this->hostSeconds = 100.0;
        $this->runs = array();
        $this->elapsed = 0.0;
        $lines = explode("\n", $this->everyRun(150));
        $this->assertSame(array(60, 50), array_map('intval', array_column($this->runs, 2)), 'each retry gets what is left of the budget, at most RETRY_TIMEOUT');
        $this->assertCount(3, $lines);
        $this->assertSame('CloudPe retries: 1 due retry waits for the next run (this run\'s time budget of 150 s is used)', $lines[2]);
        $this->assertNotNull($this->queue()->find('203'), 'left for the next run, untouched');
        $this->assertSame('1', $this->queue()->find('203')['failures']);
    }

    // ---- item 8 ----

    public function testNoActionOrCronRunCreatesATable()
    {
        HBRegistry::$db->log = array();
        $this->down['4'] = true;
        $this->assertFalse($this->act('101', '4', 'Active', 'Suspend'));
        $this->down['4'] = false;
        $this->now += 300;
        $this->everyRun();
        $this->assertTrue($this->act('102', '4', 'Active', 'Suspend'));
        $creates = array_filter(HBRegistry::$db->log, function ($sql) {
            return stripos($sql, 'CREATE TABLE') !== false;
        });
        $this->assertSame(array(), array_values($creates), 'a CREATE TABLE would commit an open MySQL transaction');

        HBRegistry::$db = new FakeDb(); // an install whose upgrade() never ran
        $output = $this->everyRun();
        $this->assertStringStartsWith('CloudPe retries: could not read the retry queue (hb_cloudpe_retries): HostBill\'s database refused SELECT ', $output);
        $this->assertStringContainsString("hb_cloudpe_retries' doesn't exist", $output);
        $this->assertStringEndsWith('; the module\'s tables are created when HostBill installs or upgrades the module (Settings → Modules)', $output);
        $this->assertSame(array(), array_values(array_filter(HBRegistry::$db->log, function ($sql) {
            return stripos($sql, 'CREATE TABLE') !== false;
        })));
        $this->assertTrue((new cloudpe())->install());
        $this->assertContains('CREATE TABLE IF NOT EXISTS `hb_cloudpe_outages` (`server_id` int(11) NOT NULL, `opened` datetime NOT NULL, `last_failed` datetime NOT NULL, `failures` int(11) NOT NULL, `last_error` text NOT NULL, `given_up` text NOT NULL, `alert` varchar(64) NOT NULL, `ticket_id` int(11) NOT NULL, PRIMARY KEY (`server_id`)) ENGINE=InnoDB DEFAULT CHARSET=utf8', HBRegistry::$db->log);
        $this->assertStringContainsString('nothing to do', $this->everyRun());
    }
}
