<?php

/**
 * Issue 13, what the provider's admin sees: the CloudPe facts on the account page (getSynchInfo),
 * the account's own log (hb_account_logs), the retry queue of automation's failed actions, the
 * opt-in call log and the monthly reconciliation, against the HostBill doubles.
 */
class AdminViewTest extends FakeHostTestCase
{
    /** @var array[] reports the next hosts answer, in order: [report, exit] */
    private $answers = array();
    /** @var int the retry queue's clock */
    private $now = 1796000000;

    protected function setUp(): void
    {
        parent::setUp();
        $this->answers = array();
        $this->now = 1796000000;
    }

    /** A module whose every operation takes the next of $answers (tag "run{n}" keeps each one's files). */
    private function scripted(array $fields = array(), $custom = array())
    {
        $module = $this->module($this->fakeHost(), $fields, $custom);
        $reflection = new ReflectionProperty('cloudpe', 'host');
        $reflection->setAccessible(true);
        $reflection->setValue($module, null);
        $runs = 0;
        $module->useHostFactory(function ($connection, $timeout) use (&$runs) {
            $runs++;
            if (!$this->answers) {
                throw new LogicException('the test gave no answer for host run ' . $runs);
            }
            list($report, $exit) = array_shift($this->answers);
            return $this->fakeHost('report', $report, $exit, $timeout, "run{$runs}");
        });
        $module->useRetries($this->queue());
        return $module;
    }

    private function queue()
    {
        return new cloudpe_retries(null, function () {
            return $this->now;
        });
    }

    private function answer($operation, array $fields, $exit = 0)
    {
        $this->answers[] = array(self::report($operation, $fields), $exit);
    }

    private static function facts($status = '2 (inactive)')
    {
        return array('cloudpe-uid' => '1234', 'cloudpe-email' => 'ann@client.example', 'cloudpe-status' => $status, 'cloudpe-login' => 'enabled', 'cloudpe-group' => 'beta', 'cloudpe-created' => '2024-03-01 10:00:00');
    }

    private static function outage($operation)
    {
        return array('error' => array('kind' => 'transport', 'message' => 'could not reach CloudPe at https://api.cloudpe.example.com:443 for setaccountstatus: connection refused (session ' . self::TOKEN . ')', 'code' => null));
    }

    // ---- item 2: CloudPe facts on the account page ----

    public function testGetSynchInfoShowsTheCloudpeFactsFromOneExactLookup()
    {
        $this->answer('sync', array('decisions' => array(array('account_id' => '101', 'decision' => 'unchanged', 'facts' => self::facts('1 (active)'))), 'summary' => array('requests' => 1)));
        $module = $this->scripted();
        $this->assertSame(array('suspended' => 0), $module->getSynchInfo());
        $args = $this->sentArgs('run1');
        $this->assertSame('sync', $args[0]);
        $this->assertSame(array('--max-report-mib', '63'), array_slice($args, 7, 2), 'the host stops below what PHP reads of its report');
        $this->assertSame(array('--strategy', 'exact-lookups'), array_slice($args, 9), 'one exact lookup, not a page of the user list');
        $this->assertCount(1, $this->sentRequest('run1')['accounts']);
        $values = $module->detailValues();
        $this->assertSame(array('1234', 'ann@client.example', '1 (active)', 'enabled', 'beta', '2024-03-01 10:00:00'), array($values['cloudpe_uid'], $values['cloudpe_email'], $values['cloudpe_status'], $values['cloudpe_login'], $values['cloudpe_group'], $values['cloudpe_created']));
        $this->assertMatchesRegularExpression('/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: ok, status Active unchanged$/', $values['cloudpe_synced']);
        $labels = array_column($module->declared('details'), 'name');
        $this->assertSame(array('CloudPe user id', 'CloudPe email', 'CloudPe status', 'CloudPe login', 'CloudPe group', 'CloudPe user created', 'Last CloudPe sync', 'CloudPe usage imported', 'CloudPe usage billed this period'), $labels);
    }

    public function testAFailedSyncSaysSoOnTheAccountPage()
    {
        $this->answer('sync', array('error' => array('kind' => 'authentication', 'message' => 'CloudPe rejected the session token ' . self::TOKEN, 'code' => 702)), 1);
        $module = $this->scripted();
        $this->assertFalse($module->getSynchInfo());
        $values = $module->detailValues();
        $this->assertMatchesRegularExpression('/ UTC: FAILED \(authentication\): CloudPe rejected the session token \[REDACTED\]$/', $values['cloudpe_synced']);
        $this->assertSame('', $values['cloudpe_uid'], 'no stale facts');
        $this->assertNoToken($module, implode("\n", $values));
    }

    // ---- item 3: the account's own log ----

    public function testAStatusWrittenByGetSynchInfoIsInTheAccountLogWithWhoAndTheFacts()
    {
        $this->answer('sync', array('decisions' => array(array('account_id' => '101', 'decision' => 'change', 'from' => 'Active', 'to' => 'Suspended', 'facts' => self::facts()))));
        $module = $this->scripted();
        $this->assertSame(array('suspended' => 1), $module->getSynchInfo());
        $rows = HBRegistry::$db->accountLog('101');
        $this->assertCount(1, $rows);
        $row = $rows[0];
        $this->assertSame(array('ann.admin', 'CloudPe', '1', '1', 'CloudPeSync', ''), array($row['admin_login'], $row['module'], $row['manual'], $row['result'], $row['event'], $row['error']));
        $this->assertStringContainsString('status from CloudPe', $row['action']);
        $this->assertSame('1', $row['change']['serialized']);
        $this->assertSame(array('name' => 'status', 'from' => 'Active', 'to' => 'Suspended'), $row['change']['data'][0]);
        $this->assertContains(array('name' => 'cloudpe-status', 'from' => '', 'to' => '2 (inactive)'), $row['change']['data']);
        $this->assertContains(array('name' => 'cloudpe-uid', 'from' => '', 'to' => '1234'), $row['change']['data']);
        $this->assertMatchesRegularExpression('/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/', $row['date']);
    }

    public function testAStatusTheDailySyncWritesIsInTheAccountLogAsAutomation()
    {
        HbAdmin::$logged = HbAdmin::NONE;
        ApiWrapper::$accounts = array(array('id' => '1', 'client_id' => '11', 'server_id' => '4', 'status' => 'Active'), array('id' => '2', 'client_id' => '11', 'server_id' => '4', 'status' => 'Active'));
        ApiWrapper::$refuse['2'] = 'Account is locked';
        $module = $this->scripted();
        $this->answer('sync', array('dry_run' => false, 'decisions' => array(
            array('account_id' => '1', 'decision' => 'change', 'from' => 'Active', 'to' => 'Suspended', 'facts' => self::facts()),
            array('account_id' => '2', 'decision' => 'change', 'from' => 'Active', 'to' => 'Terminated', 'facts' => self::facts('3 (being destroyed)')),
        )));
        $result = (new cloudpe_sync($module))->run();
        $this->assertSame(1, $result['written']);
        $one = HBRegistry::$db->accountLog('1');
        $this->assertSame(array('Automation', '0', '1'), array($one[0]['admin_login'], $one[0]['manual'], $one[0]['result']));
        $this->assertSame('CloudPe daily sync: status from CloudPe', $one[0]['action']);
        $this->assertSame(array('name' => 'status', 'from' => 'Active', 'to' => 'Suspended'), $one[0]['change']['data'][0]);
        $two = HBRegistry::$db->accountLog('2');
        $this->assertSame(array('0', 'Account is locked'), array($two[0]['result'], $two[0]['error']), 'a status HostBill refused is a failed row');
    }

    public function testAFailedActionIsInTheAccountLogWithItsErrorAndWhyItIsNotRetried()
    {
        $this->answer('suspend', array('error' => array('kind' => 'not-found', 'message' => 'CloudPe has no user with uid 1234 (token ' . self::TOKEN . ')', 'code' => null)), 1);
        $module = $this->scripted();
        $this->assertFalse($module->Suspend());
        $row = HBRegistry::$db->accountLog('101')[0];
        $this->assertSame(array('ann.admin', '1', '0', 'CloudPeSuspend'), array($row['admin_login'], $row['manual'], $row['result'], $row['event']));
        $this->assertSame('CloudPe: suspend failed; not retried (run by ann.admin)', $row['action']);
        $this->assertSame('CloudPe has no user with uid 1234 (token [REDACTED])', $row['error']);
        $this->assertContains(array('name' => 'error kind', 'from' => '', 'to' => 'not-found'), $row['change']['data']);
        $this->assertNoToken($module, serialize(HBRegistry::$db->tables));
    }

    public function testWhenTheAccountLogRefusesTheRowItGoesToHbmLogAccount()
    {
        HBRegistry::$db->broken = true;
        $this->answer('suspend', array('error' => array('kind' => 'not-found', 'message' => 'no user 1234', 'code' => null)), 1);
        $module = $this->scripted();
        $this->assertFalse($module->Suspend());
        $this->assertContains(array('account', 'CloudPe: suspend failed; not retried (run by ann.admin): no user 1234 [status: Active -> Active; error kind: not-found]', '101'), HbLog::$lines);
        $this->assertStringContainsString('account #101: the account log (hb_account_logs) refused the row: SQLSTATE[HY000]: General error: 2006 MySQL server has gone away', HbLog::text());
    }

    // ---- item 4: automation's failed actions are retried ----

    public function testASuspendDuringAnOutageSucceedsOnALaterCronRunWithNoAdminAction()
    {
        HbAdmin::$logged = HbAdmin::NONE;
        ApiWrapper::$accounts = array(array('id' => '101', 'client_id' => '11', 'server_id' => '4', 'status' => 'Active'));
        $module = $this->scripted();
        $this->answer('suspend', self::outage('suspend'), 1);
        $this->assertFalse($module->Suspend());
        $this->assertStringStartsWith('CloudPe module: queued: the CloudPe cron retries it after ' . cloudpe_retries::time($this->now + 300) . ' UTC (failure 1 of 5)', $module->recordedErrors()[1]);
        $this->assertSame('CloudPe: suspend failed; queued: the CloudPe cron retries it after ' . cloudpe_retries::time($this->now + 300) . ' UTC (failure 1 of 5)', HBRegistry::$db->accountLog('101')[0]['action']);

        $this->now += 299;
        $this->assertSame('CloudPe retries: nothing to do (no failed action is due for a retry)', cloudpe_retries::everyRun($module, null, null, $this->queue()));
        $this->now += 1;
        $this->answer('suspend', array('outcome' => array('message' => 'CloudPe user 1234 set to status 2 (inactive)', 'facts' => array('cloudpe-uid' => '1234', 'cloudpe-status' => '2 (inactive)'))));
        $output = cloudpe_retries::everyRun($module, null, null, $this->queue());
        $this->assertSame('CloudPe retries: account #101 suspend: succeeded on attempt 2; HostBill\'s accountSuspend recorded it (status Active -> Suspended)', $output);
        $this->assertSame('suspend', $this->sentArgs('run2')[0]);
        $this->assertSame(array('id' => '101', 'client_id' => '11', 'status' => 'Active', 'custom_fields' => array('cloudpeid' => '1234')), $this->sentRequest('run2')['account']);
        // Issue 25 item 2: HostBill's own action records it (its e-mails and hooks run); the
        // module's Suspend() it runs reports the retry's work and calls CloudPe no second time.
        $this->assertSame(array(array('accountSuspend', '101', true)), ApiWrapper::$moduleActions);
        $this->assertSame('Suspended', ApiWrapper::$accounts[0]['status']);
        $this->assertSame(array(), ApiWrapper::$edits, 'no status written behind HostBill\'s back');
        $this->assertFileDoesNotExist($this->dir . '/args-run3.txt', 'no third host run');
        $this->assertNull($this->queue()->find('101'), 'done: nothing queued');
        $log = HBRegistry::$db->accountLog('101');
        $this->assertSame(array('Automation', '1', 'CloudPeRetry'), array($log[1]['admin_login'], $log[1]['result'], $log[1]['event']));
        $this->assertSame(array('name' => 'status', 'from' => 'Active', 'to' => 'Suspended'), $log[1]['change']['data'][0]);
        $this->assertContains(array('name' => 'cloudpe-status', 'from' => '', 'to' => '2 (inactive)'), $log[1]['change']['data']);
        $this->assertSame(array(), ApiWrapper::$tickets);
    }

    public function testRetriesBackOffAndAfterFiveFailuresTheStaffGetAnInternalTicket()
    {
        HbAdmin::$logged = HbAdmin::NONE;
        ApiWrapper::$accounts = array(array('id' => '101', 'client_id' => '11', 'server_id' => '4', 'status' => 'Suspended'));
        $module = $this->scripted();
        $this->answer('unsuspend', self::outage('unsuspend'), 1);
        $this->assertFalse($module->Unsuspend());
        $waits = array();
        for ($failure = 2; $failure <= 5; $failure++) {
            $row = $this->queue()->find('101');
            $waits[] = strtotime($row['next_at'] . ' UTC') - $this->now;
            $this->now = strtotime($row['next_at'] . ' UTC');
            $this->answer('unsuspend', self::outage('unsuspend'), 1);
            $output = cloudpe_retries::everyRun($module, null, null, $this->queue());
        }
        $this->assertSame(array(300, 900, 2700, 8100), $waits, 'the wait triples');
        $this->assertStringStartsWith('CloudPe retries: account #101 unsuspend: failed 5 times, retries stopped; staff told (internal ticket #701)', $output);
        $this->assertCount(1, ApiWrapper::$tickets);
        $ticket = ApiWrapper::$tickets[0];
        $this->assertSame(array('11', '1'), array($ticket['client_id'], $ticket['isinternal']), 'an internal ticket on the client: the client does not see it');
        // Issue 25 item 5: a transient give-up is told as its App's outage alert.
        $this->assertSame('CloudPe: App #4 failing since ' . cloudpe_retries::time(1796000000 + 300) . ' UTC; queued actions stopped', $ticket['subject']);
        $this->assertStringContainsString('1 queued action stopped after 5 failures: #101 unsuspend', $ticket['body']);
        $this->assertStringContainsString('(4 failures, the last at ' . cloudpe_retries::time($this->now) . ' UTC: (transport) could not reach CloudPe', $ticket['body']);
        $this->assertSame('given-up', $this->queue()->find('101')['state']);
        $this->now += 100000;
        $this->assertStringContainsString('nothing to do', cloudpe_retries::everyRun($module, null, null, $this->queue()), 'no more retries');
        $this->assertSame(array(), ApiWrapper::$edits);
        $this->assertCount(5, HBRegistry::$db->accountLog('101'), 'the failure and each retry');
        $this->assertStringContainsString('(session [REDACTED])', $this->queue()->find('101')['last_error']);
        $this->assertNoToken($module, $output . serialize(HBRegistry::$db->tables) . serialize(ApiWrapper::$tickets));
    }

    public function testWhenHostBillRefusesTheTicketTheStaffGetAnAdminNote()
    {
        HbAdmin::$logged = HbAdmin::NONE;
        ApiWrapper::$refuseTickets = 'Invalid department';
        ApiWrapper::$accounts = array(array('id' => '101', 'client_id' => '11', 'server_id' => '4', 'status' => 'Active'));
        $module = $this->scripted();
        $this->answer('suspend', self::outage('suspend'), 1);
        $this->assertFalse($module->Suspend());
        $this->now += 300;
        $this->answer('suspend', array('error' => array('kind' => 'authentication', 'message' => 'CloudPe rejected the session token', 'code' => 702)), 1);
        $output = cloudpe_retries::everyRun($module, null, null, $this->queue());
        $this->assertStringStartsWith('CloudPe retries: account #101 suspend: failed permanently (authentication), retries stopped; staff told (admin note on the account)', $output);
        $this->assertSame(array('account', '101'), array(ApiWrapper::$notes[0]['item_type'], ApiWrapper::$notes[0]['item_id']));
        $this->assertStringContainsString('failed permanently (authentication)', ApiWrapper::$notes[0]['note']);
    }

    public function testARetryWhoseAppIsGoneStopsAndTellsTheStaff()
    {
        HbAdmin::$logged = HbAdmin::NONE;
        ApiWrapper::$accounts = array(array('id' => '101', 'client_id' => '11', 'server_id' => '4', 'status' => 'Pending'));
        $module = $this->scripted();
        $this->answer('create', self::outage('create'), 1);
        $this->assertFalse($module->Create());
        unset(HbApps::$rows['4']);
        $this->now += 300;
        $output = cloudpe_retries::everyRun($module, null, null, $this->queue());
        $this->assertSame('CloudPe retries: account #101 create: failed permanently (configuration), retries stopped; staff told (internal ticket #701): HostBill returned no details for App #4 (Servers model getServerDetails)', $output);
        $this->assertSame('given-up', $this->queue()->find('101')['state']);
        $this->assertSame(array(), $this->answers, 'the outage answer was used by Create, nothing else ran');
    }

    /** @dataProvider permanentFailures */
    public function testPermanentFailuresAndAdminsFailuresAreNotQueued($kind, $admin, $limit, $why)
    {
        HbAdmin::$logged = $admin;
        $error = array('kind' => $kind, 'message' => "failed ({$kind})", 'code' => null);
        if ($limit !== null) {
            $error['limit'] = array('name' => $limit, 'value' => 'x');
        }
        $this->answer('create', array('error' => $error), 1);
        $module = $this->scripted();
        $this->assertFalse($module->Create());
        $this->assertNull($this->queue()->find('101'));
        $this->assertSame(array("failed ({$kind})"), $module->recordedErrors());
        $this->assertStringEndsWith($why, HBRegistry::$db->accountLog('101')[0]['action']);
    }

    public function permanentFailures()
    {
        return array(
            'bad cloudpeid' => array('configuration', HbAdmin::NONE, null, 'not retried: configuration is not a failure that passes by itself'),
            'no such user' => array('not-found', HbAdmin::NONE, null, 'not retried: not-found is not a failure that passes by itself'),
            'authentication' => array('authentication', HbAdmin::NONE, null, 'not retried: authentication is not a failure that passes by itself'),
            'refused component' => array('module-refused', HbAdmin::NONE, null, 'not retried: module-refused is not a failure that passes by itself'),
            'memory limit' => array('module-trapped', HbAdmin::NONE, 'memory', 'not retried: module-trapped is not a failure that passes by itself'),
            'an admin\'s own run' => array('transport', HbAdmin::STAFF, null, 'not retried (run by ann.admin)'),
        );
    }

    public function testTheDeadlineAndRemoteApiErrorsAreTransient()
    {
        $this->assertTrue(cloudpe_retries::isTransient(array('error' => array('kind' => 'module-trapped', 'limit' => array('name' => 'deadline')))));
        $this->assertTrue(cloudpe_retries::isTransient(array('error' => array('kind' => 'remote-api'))));
        $this->assertTrue(cloudpe_retries::isTransient(array('error' => array('kind' => 'transport'))));
        $this->assertFalse(cloudpe_retries::isTransient(array('error' => array('kind' => 'module-trapped'))));
        $this->assertSame(array(300, 900, 2700, 8100, 21600, 21600), array_map(array('cloudpe_retries', 'backoff'), array(1, 2, 3, 4, 5, 9)));
    }

    public function testASuccessfulActionClearsTheQueuedRetryAndARetryOfAFinalAccountIsDropped()
    {
        HbAdmin::$logged = HbAdmin::NONE;
        ApiWrapper::$accounts = array(array('id' => '101', 'client_id' => '11', 'server_id' => '4', 'status' => 'Active'));
        $module = $this->scripted();
        $this->answer('suspend', self::outage('suspend'), 1);
        $this->assertFalse($module->Suspend());
        HbAdmin::$logged = HbAdmin::STAFF;
        $this->answer('suspend', array('outcome' => array('message' => 'suspended')));
        $this->assertTrue($module->Suspend());
        $this->assertNull($this->queue()->find('101'));
        $this->assertSame('CloudPe: queued suspend (queued, 1 failures) cleared: suspend succeeded', HBRegistry::$db->accountLog('101')[1]['action']);

        HbAdmin::$logged = HbAdmin::NONE;
        $this->answer('suspend', self::outage('suspend'), 1);
        $this->assertFalse($module->Suspend());
        ApiWrapper::$accounts[0]['status'] = 'Terminated';
        $this->now += 300;
        $this->assertSame('CloudPe retries: account #101 suspend: dropped (the account is Terminated)', cloudpe_retries::everyRun($module, null, null, $this->queue()));
        $this->assertNull($this->queue()->find('101'));
        $this->assertSame(array(), $this->answers, 'no host ran for the dropped retry');
    }

    public function testTheEveryRunTaskRetriesThroughTheController()
    {
        HbAdmin::$logged = HbAdmin::NONE;
        $controller = new cloudpe_controller();
        $controller->module = new cloudpe();
        $created = HBRegistry::$db->log; // by the module's own createTables(), as install() runs it
        HBRegistry::$db->log = array();
        $this->assertSame('CloudPe retries: nothing to do (no failed action is due for a retry)', $controller->call_EveryRun());
        $this->assertSame(array('SELECT `account_id`, `server_id`, `operation`, `state`, `failures`, `first_failed`, `next_at`, `last_kind`, `last_error` FROM `hb_cloudpe_retries` WHERE `state` = :state'), HBRegistry::$db->log, 'one SELECT, no CREATE TABLE (issue 25 item 8)');
        $this->assertContains('CREATE TABLE IF NOT EXISTS `hb_cloudpe_retries` (`account_id` int(11) NOT NULL, `server_id` int(11) NOT NULL, `operation` varchar(16) NOT NULL, `state` varchar(16) NOT NULL, `failures` int(11) NOT NULL, `first_failed` datetime NOT NULL, `next_at` datetime NOT NULL, `last_kind` varchar(32) NOT NULL, `last_error` text NOT NULL, PRIMARY KEY (`account_id`)) ENGINE=InnoDB DEFAULT CHARSET=utf8', $created);
        HBRegistry::$db->broken = true;
        $controller = new cloudpe_controller();
        $controller->module = new cloudpe();
        $this->assertStringStartsWith('CloudPe retries: could not read the retry queue (hb_cloudpe_retries): ', $controller->call_EveryRun());
    }

    public function testAFreshInstallRegistersTheEveryRunAndMonthlyTasks()
    {
        HBRegistry::$db->insertRow('hb_modules_configuration', CronTest::moduleRow(''));
        $this->assertTrue((new cloudpe())->install());
        $tasks = array();
        foreach (HBRegistry::$db->tables['hb_cron_tasks'] as $row) {
            $tasks[$row['task']] = array($row['run_every'], $row['run_every_time']);
        }
        $this->assertSame(array('custom:7:call_Daily' => array('Time', '1200'), 'custom:7:call_EveryRun' => array('Run', '1200'), 'custom:7:call_Hourly' => array('Hour', '1'), 'custom:7:call_Monthly' => array('Month', '1')), $tasks);
    }

    // ---- item 5: the opt-in call log ----

    public function testWithTheCallLogOnEachCallIsLoggedWithSecretsMaskedByKey()
    {
        $calls = array(
            array('method' => 'getaccounts', 'params' => array('appid' => 'cluster', 'session' => '********', 'uid' => '1234', 'password' => 'not-the-token-but-secret', 'nested' => array('apikey' => 'k1')), 'http_status' => 200, 'duration_ms' => 23, 'result' => 0,
                'reply' => json_encode(array('result' => 0, 'session' => 'a-session-the-module-never-saw', 'array' => array(array('uid' => 1234, 'email' => 'ann@client.example', 'note' => str_repeat('x', 600)))))),
            array('method' => 'setaccountstatus', 'params' => array('session' => self::TOKEN, 'status' => '2'), 'http_status' => 500, 'duration_ms' => 5, 'result' => null, 'reply' => 'error near ' . self::TOKEN),
        );
        $this->answer('suspend', array('outcome' => array('message' => 'ok'), 'calls' => $calls, 'calls_dropped' => 3));
        $module = $this->scripted(array(), array('Call log' => 'on'));
        $this->assertTrue($module->Suspend());
        $lines = array_values(array_filter(HbLog::$lines, function ($l) {
            return strpos($l[1], 'call: ') === 0;
        }));
        $this->assertCount(3, $lines);
        $this->assertSame('call: 3 more calls of this run are not logged (the report keeps at most 2)', $lines[2][1]);
        $this->assertSame(array('system', 'CloudPe Module'), array($lines[0][0], $lines[0][2]));
        $this->assertStringStartsWith('call: getaccounts {"appid":"cluster","session":"********","uid":"1234","password":"********","nested":{"apikey":"********"}} -> HTTP 200 in 23 ms, result 0: {"result":0,"session":"********","array":[{"uid":1234,"email":"ann@client.example","note":"xxx', $lines[0][1]);
        $this->assertStringEndsWith('...', $lines[0][1]);
        $this->assertLessThan(strlen($calls[0]['reply']), strlen($lines[0][1]), 'the reply is cut');
        $this->assertStringNotContainsString('a-session-the-module-never-saw', HbLog::text());
        $this->assertStringNotContainsString('not-the-token-but-secret', HbLog::text());
        $this->assertSame('call: setaccountstatus {"session":"********","status":"2"} -> HTTP 500 in 5 ms: error near [REDACTED]', $lines[1][1]);
        $this->assertNoToken($module);
    }

    public function testTheCallLogIsOffByDefault()
    {
        $this->answer('suspend', array('outcome' => array('message' => 'ok'), 'calls' => array(array('method' => 'getaccounts', 'params' => array(), 'http_status' => 200))));
        $module = $this->scripted(array(), array('Call log' => 'off'));
        $this->assertTrue($module->Suspend());
        $this->answer('suspend', array('outcome' => array('message' => 'ok'), 'calls' => array(array('method' => 'getaccounts', 'params' => array(), 'http_status' => 200))));
        $module = $this->scripted();
        $this->assertTrue($module->Suspend());
        $this->assertStringNotContainsString('call: ', HbLog::text());
        $this->assertArrayNotHasKey('Call log', $this->sentRequest('run1')['app']['custom'], 'an App never saved with the setting sends nothing new');
    }

    // ---- item 1: the monthly reconciliation ----

    public function testTheMonthlyReconciliationSendsEveryAccountWithItsClientsEmailAndShowsTheFindings()
    {
        HbApps::add('5', 'CloudPe US', array('status_url' => 'https://us.example', 'field1' => 'cluster', 'field2' => 'us-token'), array());
        $this->appRow();
        ApiWrapper::$perPage = 2;
        ApiWrapper::$accounts = array(
            array('id' => '5', 'client_id' => '21', 'server_id' => '4', 'status' => 'Active'),
            array('id' => '6', 'client_id' => '22', 'server_id' => '4', 'status' => 'Terminated'),
            array('id' => '7', 'client_id' => '23', 'server_id' => '4', 'status' => 'Pending'),
            array('id' => '8', 'client_id' => '23', 'server_id' => '4', 'status' => 'Suspended'),
            array('id' => '9', 'client_id' => '24', 'server_id' => '5', 'status' => 'Active'),
        );
        ApiWrapper::$clients = array('21' => array('email' => 'a@x.example'), '22' => array('email' => 'b@x.example', 'cloudpeid' => '123'), '23' => array('email' => 'c@x.example', 'cloudpeid' => '124'), '24' => array('email' => 'd@x.example', 'cloudpeid' => '9'));
        $report = array('reconciliation' => array(
            'counts' => array('accounts' => 4, 'remote_users' => 40, 'without_id' => 1, 'missing_remote' => 1, 'shared_users' => 1, 'unlinked_users' => 38, 'email_differences' => 1),
            'without_id' => array(array('account_id' => 5, 'detail' => 'no `cloudpeid`')),
            'missing_remote' => array(array('account_id' => 6, 'uid' => 123)),
            'shared_users' => array(array('uid' => 124, 'account_ids' => array(7, 8))),
            'unlinked_users' => array(array('uid' => 1, 'email' => 'u1@y'), array('uid' => 2, 'email' => 'u2@y'), array('uid' => 3, 'email' => 'u3@y'), array('uid' => 4, 'email' => 'u4@y'), array('uid' => 5, 'email' => 'u5@y'), array('uid' => 6, 'email' => 'u6@y')),
            'email_differences' => array(array('account_id' => 7, 'uid' => 124, 'hostbill_email' => 'c@x.example', 'remote_email' => 'other@y')),
            'requests' => 1,
        ));
        $hosts = array(
            '4' => array(self::report('reconcile', $report), 0),
            '5' => array(self::report('reconcile', array('error' => array('kind' => 'authentication', 'message' => 'CloudPe rejected the session token us-token', 'code' => 702))), 1),
        );
        $module = new cloudpe();
        $module->useHostFactory(function ($connection, $timeout) use ($hosts) {
            $this->assertSame(900, $timeout);
            return $this->fakeHost('report', $hosts[$connection['id']][0], $hosts[$connection['id']][1], $timeout, 'app' . $connection['id']);
        });
        $controller = new cloudpe_controller();
        $controller->module = $module;
        $lines = explode("\n", $controller->call_Monthly());
        $this->assertSame(array(
            'App #4 "CloudPe EU" reconciliation: 4 accounts, 40 CloudPe users (1 CloudPe requests); 1 without a valid CloudPe id: #5 (no `cloudpeid`); '
            . '1 pointing at ids CloudPe does not have: #6 -> uid 123; 1 CloudPe users shared by 2+ accounts: uid 124 by #7+#8; '
            . '38 CloudPe users no account points at: uid 1 u1@y, uid 2 u2@y, uid 3 u3@y, uid 4 u4@y, uid 5 u5@y, +33 more; '
            . '1 email differences: #7 uid 124: HostBill c@x.example, CloudPe other@y',
            'App #5 "CloudPe US" reconciliation: FAILED: CloudPe rejected the session token [REDACTED]',
        ), $lines);
        $sent = $this->sentRequest('app4');
        $this->assertSame(array('5', '6', '7', '8'), array_column($sent['accounts'], 'id'), 'every account of the App, whatever its status, every page');
        $this->assertSame(array('id' => '7', 'client_id' => '23', 'status' => 'Pending', 'custom_fields' => array('cloudpeid' => '124'), 'email' => 'c@x.example'), $sent['accounts'][2]);
        $this->assertSame(array(), $sent['accounts'][0]['custom_fields']);
        $this->assertSame('reconcile', $this->sentArgs('app4')[0]);
        $this->assertSame(array('21', '22', '23', '24'), array_column(ApiWrapper::calls('getClientDetails'), 'id'), 'each client once');
        $this->assertSame(array(), ApiWrapper::$edits, 'read-only');
        $this->assertStringContainsString('App #5 "CloudPe US" reconciliation: FAILED', HbLog::text());
        $this->assertStringNotContainsString('us-token', HbLog::text());
    }

    /**
     * Issue 24 item 1: findings about accounts the reconciliation did not send (App 5's #9, an
     * id HostBill lacks) or a second finding for one account are refused, counted and logged.
     */
    public function testReconciliationFindingsAboutAccountsNotSentAreRefused()
    {
        $this->appRow();
        ApiWrapper::$accounts = array(
            array('id' => '5', 'client_id' => '21', 'server_id' => '4', 'status' => 'Active'),
            array('id' => '6', 'client_id' => '22', 'server_id' => '4', 'status' => 'Terminated'),
            array('id' => '9', 'client_id' => '24', 'server_id' => '5', 'status' => 'Active'),
        );
        ApiWrapper::$clients = array('21' => array('email' => 'a@x.example'), '22' => array('email' => 'b@x.example', 'cloudpeid' => '123'), '24' => array('email' => 'd@x.example', 'cloudpeid' => '9'));
        $report = array('reconciliation' => array(
            'counts' => array('accounts' => 2, 'remote_users' => 3, 'without_id' => 2, 'missing_remote' => 2, 'shared_users' => 1, 'unlinked_users' => 0, 'email_differences' => 1),
            'without_id' => array(array('account_id' => 5, 'detail' => 'no `cloudpeid`'), array('account_id' => 5, 'detail' => 'again')),
            'missing_remote' => array(array('account_id' => 6, 'uid' => 123), array('account_id' => 999, 'uid' => 5)),
            'shared_users' => array(array('uid' => 9, 'account_ids' => array(6, 9))),
            'email_differences' => array(array('account_id' => 9, 'uid' => 9, 'hostbill_email' => 'd@x.example', 'remote_email' => 'e@y')),
            'requests' => 1,
        ));
        $module = new cloudpe();
        $module->useHostFactory(function ($connection, $timeout) use ($report) {
            return $this->fakeHost('report', self::report('reconcile', $report), 0, $timeout, 'app' . $connection['id']);
        });
        $controller = new cloudpe_controller();
        $controller->module = $module;
        $this->assertSame(
            'App #4 "CloudPe EU" reconciliation: 2 accounts, 3 CloudPe users (1 CloudPe requests); 1 without a valid CloudPe id: #5 (no `cloudpeid`); '
            . '1 pointing at ids CloudPe does not have: #6 -> uid 123; '
            . '4 entries refused (module contract violation: a second finding (without_id) about account #5, ...)',
            $controller->call_Monthly()
        );
        $log = HbLog::text();
        foreach (array('a finding (missing_remote) about account #999, which this reconciliation did not send', 'a finding (shared_users) about account #9, which this reconciliation did not send', 'a finding (email_differences) about account #9, which this reconciliation did not send') as $refused) {
            $this->assertStringContainsString("reconciliation App #4: refused {$refused} (module contract violation", $log);
        }
    }

    public function testAReconciliationWithNoFindingsSaysSo()
    {
        $this->assertSame('3 accounts, 3 CloudPe users; everything matches', cloudpe_reconcile::describe(array('counts' => array('accounts' => 3, 'remote_users' => 3))));
        $this->assertSame(
            '2 accounts, 5 CloudPe users; 1 pointing at ids CloudPe does not have: #2 -> uid 999; 1 email differences: #1 uid 1002: HostBill zz@x, CloudPe u@y',
            cloudpe_reconcile::describe(array(
                'counts' => array('accounts' => 2, 'remote_users' => 5, 'missing_remote' => 1, 'email_differences' => 1),
                'missing_remote' => array(array('account_id' => 2, 'uid' => 999)),
                'email_differences' => array(array('account_id' => 1, 'uid' => 1002, 'hostbill_email' => 'zz@x', 'remote_email' => 'u@y')),
            ))
        );
    }
}
