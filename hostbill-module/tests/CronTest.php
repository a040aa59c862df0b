<?php

/**
 * The daily cron as HostBill runs it: the controller gets an UNCONNECTED module, finds every CloudPe
 * App itself, connects one module instance per App and syncs each; one failing App does not stop
 * the others. Also the cron task's registration on install/upgrade and the 1.0.x leftovers.
 */
class CronTest extends FakeHostTestCase
{
    const TOKEN_US = 'us/session"token\\77aa01';

    /** @var array<string, callable> App id => fn(float $timeout): cloudpe_host */
    private $hosts = array();
    /** @var float[] App id => timeout each host was built with */
    private $timeouts = array();

    protected function setUp(): void
    {
        parent::setUp();
        $this->hosts = array();
        $this->timeouts = array();
        // App 4 (healthy), App 5 (the one that fails), App 9 of another module (ignored).
        HbApps::add('4', 'CloudPe EU', array('host' => 'eu.cloudpe.example', 'status_url' => 'https://eu.cloudpe.example', 'field1' => 'cluster', 'field2' => self::TOKEN), array('Client field code' => 'cloudpeid', 'On terminate' => 'none'));
        HbApps::add('5', 'CloudPe US', array('host' => 'us.cloudpe.example', 'status_url' => 'https://us.cloudpe.example', 'field1' => 'cluster', 'field2' => self::TOKEN_US), array('Client field code' => 'uscloudid', 'On terminate' => 'deactivate'));
        HbApps::add('9', 'cPanel 1', array('host' => 'cp.example', 'username' => 'root', 'password' => 'cp-pass'), null, 'Cpanel', '12');
        ApiWrapper::$accounts = array(
            array('id' => '1', 'client_id' => '11', 'server_id' => '4', 'product_id' => '3', 'status' => 'Active'),
            array('id' => '2', 'client_id' => '11', 'server_id' => '4', 'product_id' => '3', 'status' => 'Suspended'),
            array('id' => '3', 'client_id' => '12', 'server_id' => '4', 'product_id' => '3', 'status' => 'Active'),
            array('id' => '4', 'client_id' => '12', 'server_id' => '4', 'product_id' => '3', 'status' => 'Active'),
            array('id' => '5', 'client_id' => '13', 'server_id' => '4', 'product_id' => '3', 'status' => 'Pending'),
            array('id' => '8', 'client_id' => '13', 'server_id' => '4', 'product_id' => '3', 'status' => 'Terminated'),
            array('id' => '6', 'client_id' => '14', 'server_id' => '5', 'product_id' => '3', 'status' => 'Active'),
            array('id' => '7', 'client_id' => '14', 'server_id' => '5', 'product_id' => '3', 'status' => 'Suspended'),
            array('id' => '10', 'client_id' => '15', 'server_id' => '9', 'product_id' => '8', 'status' => 'Active'),
        );
        ApiWrapper::$clients = array(
            '11' => array('cloudpeid' => '100'), '12' => array('cloudpeid' => '200'), '13' => array(),
            '14' => array('cloudpeid' => 'wrong', 'uscloudid' => '400'), '15' => array(),
        );
        ApiWrapper::$perPage = 2;
    }

    /** The controller as HostBill's cron gets it: module instance not connected to any App. */
    private function controller()
    {
        $module = new cloudpe();
        $hosts = &$this->hosts;
        $timeouts = &$this->timeouts;
        $module->useHostFactory(function ($connection, $timeout) use (&$hosts, &$timeouts) {
            $timeouts[$connection['id']] = $timeout;
            return call_user_func($hosts[$connection['id']], $timeout);
        });
        $controller = new cloudpe_controller();
        $controller->module = $module;
        return $controller;
    }

    /** App `$id` answers with the fake host in `$mode`. */
    private function app($id, $mode, array $report = array(), $exit = 0)
    {
        $this->hosts[$id] = function ($timeout) use ($id, $mode, $report, $exit) {
            return $this->fakeHost($mode, $report, $exit, $timeout, "app{$id}");
        };
    }

    private function healthyApp4()
    {
        $decisions = array(
            array('account_id' => '1', 'decision' => 'change', 'from' => 'Active', 'to' => 'Suspended', 'facts' => array()),
            array('account_id' => '3', 'decision' => 'error', 'error' => array('kind' => 'not-found', 'message' => 'CloudPe has no user with uid 200')),
            array('account_id' => '4', 'decision' => 'change', 'from' => 'Active', 'to' => 'Terminated', 'facts' => array()),
            array('account_id' => '2', 'decision' => 'unchanged', 'facts' => array()),
        );
        $summary = array('accounts' => 4, 'change' => 2, 'unchanged' => 1, 'skipped' => 0, 'error' => 1, 'requests' => 3, 'elapsed_ms' => 260);
        $this->app('4', 'report', self::report('sync', array('dry_run' => false, 'decisions' => $decisions, 'summary' => $summary)));
    }

    /**
     * Issue 9, break 1: two Apps, one failing. The healthy one is synced, the output has one line
     * per App, and the failure is in the system log.
     *
     * @dataProvider failingApps
     */
    public function testDailySyncsEveryAppAndOneFailingAppDoesNotStopTheOthers($setup, $reason)
    {
        $this->healthyApp4();
        $setup($this);
        $output = $this->controller()->call_Daily();

        $lines = explode("\n", $output);
        $this->assertCount(2, $lines, $output);
        $this->assertSame('App #4 "CloudPe EU": 4 accounts read, 2 changed, 1 unchanged, 0 skipped, 1 errors; 3 CloudPe requests in 0.3 s; first error: account #3: CloudPe has no user with uid 200', $lines[0]);
        $this->assertMatchesRegularExpression('/^App #5 "CloudPe US": FAILED \([02] accounts read, 0 changed, 0 errors\): /', $lines[1]);
        $this->assertStringContainsString($reason, $lines[1]);
        $this->assertStringContainsString('sync App #5 "CloudPe US": ', HbLog::text());
        $this->assertSame(array(array('id' => '1', 'status' => 'Suspended'), array('id' => '4', 'status' => 'Terminated')), ApiWrapper::$edits, 'only the healthy App\'s changes');
        $this->assertStringContainsString('error CloudPe Module: sync App #4: account #3: CloudPe has no user with uid 200', HbLog::text());

        $eu = $this->sentRequest('app4');
        $this->assertSame(self::TOKEN, $eu['app']['field2']);
        $this->assertSame(array('1', '3', '4', '2'), array_column($eu['accounts'], 'id'), 'App 4\'s candidates only (Active pages, then Suspended)');
        $this->assertSame(array('cloudpeid' => '200'), $eu['accounts'][1]['custom_fields']);
        $this->assertSame(array('Client field code' => 'cloudpeid', 'On terminate' => 'none'), $eu['app']['custom']);
        $this->assertNoToken($this->controller()->module, $output);
        foreach (array(self::TOKEN_US, rawurlencode(self::TOKEN_US), substr(json_encode(self::TOKEN_US), 1, -1), '77aa01') as $form) {
            $this->assertStringNotContainsString($form, $output . HbLog::text());
        }
    }

    public function failingApps()
    {
        $report = function ($kind, $message) {
            return self::report('sync', array('error' => array('kind' => $kind, 'message' => $message, 'code' => null)));
        };
        return array(
            'bad token' => array(function ($t) use ($report) {
                $t->app('5', 'report', $report('authentication', 'CloudPe rejected the session token ' . CronTest::TOKEN_US), 1);
            }, 'CloudPe rejected the session token [REDACTED]'),
            'unreachable' => array(function ($t) use ($report) {
                $t->app('5', 'report', $report('transport', 'cannot reach us.cloudpe.example: connection refused'), 1);
            }, 'cannot reach us.cloudpe.example'),
            'host refused (exit 3)' => array(function ($t) use ($report) {
                $t->app('5', 'report', $report('module-refused', 'the component is not compatible'), 3);
            }, 'the component is not compatible'),
            'host crashed' => array(function ($t) {
                $t->app('5', 'crash');
            }, 'crashed during sync (signal 11)'),
            'any Throwable' => array(function ($t) {
                $t->hosts['5'] = function () {
                    throw new RuntimeException('the factory broke with ' . CronTest::TOKEN_US);
                };
            }, 'stopped by an unexpected error: RuntimeException: the factory broke with [REDACTED]'),
        );
    }

    /** Issue 12 §5: a failed App's line names the limit that stopped it and the host's meter. */
    public function testAFailedAppsLineNamesTheLimitAndTheMeter()
    {
        $this->healthyApp4();
        $this->app('5', 'report', self::report('sync', array(
            'error' => array('kind' => 'module-trapped', 'message' => 'the module did not finish within 810 s', 'code' => null, 'limit' => array('name' => 'deadline', 'value' => '810 s')),
            'meter' => array('wall_ms' => 810004, 'requests' => 41, 'bytes_received' => 123456, 'peak_memory_bytes' => 9437184),
        )), 3);
        $lines = explode("\n", $this->controller()->call_Daily());
        $this->assertSame('App #5 "CloudPe US": FAILED (2 accounts read, 0 changed, 0 errors; 41 CloudPe requests in 810.0 s): the module did not finish within 810 s (stopped by the deadline limit (810 s))', $lines[1]);
        $this->assertStringContainsString('sync failed (module-trapped): the module did not finish within 810 s [stopped by the deadline limit (810 s); 41 requests in 810.0 s]', HbLog::text());
    }

    /** Issue 11 §6: the report's warning (plain http) ends the App's line. */
    public function testAWarningEndsTheAppsLine()
    {
        $this->healthyApp4();
        $this->app('5', 'report', self::report('sync', array(
            'dry_run' => false,
            'decisions' => array(array('account_id' => '6', 'decision' => 'unchanged')),
            'meter' => array('wall_ms' => 1500, 'requests' => 2),
            'warnings' => array('plain http: 2 requests crossed the network unencrypted'),
        )));
        $lines = explode("\n", $this->controller()->call_Daily());
        $this->assertSame('App #5 "CloudPe US": 2 accounts read, 0 changed, 1 unchanged, 0 skipped, 0 errors; 2 CloudPe requests in 1.5 s; warning: plain http: 2 requests crossed the network unencrypted', $lines[1]);
    }

    /** Issue 12 §5: without the sync's own summary, the line's counts come from the meter. */
    public function testTheMeterStandsInForAMissingSummary()
    {
        $this->healthyApp4();
        $this->app('5', 'report', self::report('sync', array('dry_run' => false, 'decisions' => array(array('account_id' => '6', 'decision' => 'unchanged')), 'meter' => array('wall_ms' => 1500, 'requests' => 2))));
        $lines = explode("\n", $this->controller()->call_Daily());
        $this->assertSame('App #5 "CloudPe US": 2 accounts read, 0 changed, 1 unchanged, 0 skipped, 0 errors; 2 CloudPe requests in 1.5 s', $lines[1]);
    }

    /** Issue 12 §1: a refused signature is the App's line, with what to do. */
    public function testASignatureRefusalIsTheAppsLineWithWhatToDo()
    {
        $this->healthyApp4();
        $this->app('5', 'report', self::report('sync', array('error' => array('kind' => 'module-refused', 'message' => "{$this->dir}/module.wasm is refused: it is not signed (no signature file) (expected {$this->dir}/module.wasm.sig)", 'code' => null))), 3);
        $lines = explode("\n", $this->controller()->call_Daily());
        $this->assertStringStartsWith('App #4 "CloudPe EU": 4 accounts read', $lines[0], 'the other App is synced');
        $this->assertStringContainsString("FAILED (2 accounts read, 0 changed, 0 errors): CloudPe module: {$this->dir}/module.wasm is refused: it is not signed", $lines[1]);
        $this->assertStringContainsString("Install the vendor's signed cloudpe.wasm together with its cloudpe.wasm.sig", $lines[1]);
    }

    public function testEachAppGetsItsOwnSettings()
    {
        $this->healthyApp4();
        $this->app('5', 'report', self::report('sync', array('dry_run' => false, 'decisions' => array(), 'summary' => array())));
        $this->controller()->call_Daily();
        $us = $this->sentRequest('app5');
        $this->assertSame(self::TOKEN_US, $us['app']['field2']);
        $this->assertSame(array('Client field code' => 'uscloudid', 'On terminate' => 'deactivate'), $us['app']['custom']);
        $this->assertSame(array('uscloudid' => '400'), $us['accounts'][0]['custom_fields'], 'App 5 reads its own client field');
        $this->assertArrayNotHasKey('app9', array_flip(array_map('basename', glob($this->dir . '/args-*') ?: array())), 'the cPanel App is not touched');
        $this->assertFileDoesNotExist($this->dir . '/args-app9.txt');
    }

    /** Issue 9, "also": the sync's 900 s deadline reaches the host from the cron. */
    public function testTheCronsDeadlineReachesTheHost()
    {
        $this->healthyApp4();
        $this->app('5', 'report', self::report('sync', array('dry_run' => false, 'decisions' => array(), 'summary' => array())));
        $this->controller()->call_Daily();
        $this->assertSame(array('4' => 900, '5' => 900), $this->timeouts);
        $this->assertSame('810', $this->flag('--deadline-secs', 'app4'));
        $this->assertSame('810', $this->flag('--deadline-secs', 'app5'));
    }

    public function testOnlyCandidateAccountsAreReadPageByPage()
    {
        $this->healthyApp4();
        $this->app('5', 'report', self::report('sync', array('dry_run' => false, 'decisions' => array(), 'summary' => array())));
        $this->controller()->call_Daily();
        $calls = ApiWrapper::calls('getAccounts');
        foreach ($calls as $params) {
            $this->assertContains($params['filter']['status'], array('Active', 'Suspended'));
        }
        $app4 = array_values(array_filter($calls, function ($p) {
            return $p['filter']['server_id'] === '4';
        }));
        $this->assertSame(array(array('Active', 0), array('Active', 1), array('Suspended', 0)), array_map(function ($p) {
            return array($p['filter']['status'], $p['page']);
        }, $app4), 'three Active accounts in pages of two, then one Suspended');
        $this->assertSame(array('11', '12', '14'), array_column(ApiWrapper::calls('getClientDetails'), 'id'), 'each candidate\'s client once; client 13 has none');
    }

    public function testAHostBillIgnoringTheStatusFilterStillSendsOnlyCandidates()
    {
        ApiWrapper::$ignoreStatusFilter = true;
        $this->healthyApp4();
        $this->app('5', 'report', self::report('sync', array('dry_run' => false, 'decisions' => array(), 'summary' => array())));
        $output = $this->controller()->call_Daily();
        $ids = array_column($this->sentRequest('app4')['accounts'], 'id');
        sort($ids);
        $this->assertSame(array('1', '2', '3', '4'), $ids, 'no Pending or Terminated account reaches the host');
        $this->assertStringContainsString('App #4 "CloudPe EU": 4 accounts read', $output);
    }

    public function testADryRunWritesNothing()
    {
        $this->healthyApp4();
        $decisions = array(array('account_id' => '1', 'decision' => 'would-change', 'from' => 'Active', 'to' => 'Suspended', 'facts' => array()));
        $this->app('4', 'report', self::report('sync', array('dry_run' => true, 'decisions' => $decisions, 'summary' => array('requests' => 1, 'elapsed_ms' => 10))));
        $this->app('5', 'report', self::report('sync', array('dry_run' => true, 'decisions' => array(), 'summary' => array())));
        $output = cloudpe_sync::daily($this->controller()->module, true);
        $this->assertContains('--dry-run', $this->sentArgs('app4'));
        $this->assertContains('--omit-unchanged-facts', $this->sentArgs('app4'), 'the daily sync reads no unchanged facts');
        $this->assertSame(array(), ApiWrapper::$edits);
        $this->assertStringContainsString('1 would change (dry run, nothing written)', $output);
    }

    public function testARefusedStatusWriteIsCountedAsAnError()
    {
        ApiWrapper::$refuse['4'] = 'Account is locked';
        $this->healthyApp4();
        $this->app('5', 'report', self::report('sync', array('dry_run' => false, 'decisions' => array(), 'summary' => array())));
        $output = $this->controller()->call_Daily();
        $this->assertContains('--omit-unchanged-facts', $this->sentArgs('app4'));
        $this->assertNotContains('--dry-run', $this->sentArgs('app4'));
        $this->assertStringContainsString('App #4 "CloudPe EU": 4 accounts read, 1 changed, 1 unchanged, 0 skipped, 2 errors', $output);
        $this->assertStringContainsString('account #4: HostBill did not record the status Terminated: Account is locked', HbLog::text());
    }

    /**
     * Issue 25 item 3: staff terminate account #1 while the host runs (after its accounts were
     * read). CloudPe's "Suspended" was compared with the Active status sent; it is not written
     * over Terminated, and the line counts it as changed meanwhile.
     */
    public function testAStatusChangedWhileTheHostRunsIsNotOverwritten()
    {
        $this->healthyApp4();
        $this->app('5', 'report', self::report('sync', array('dry_run' => false, 'decisions' => array(), 'summary' => array())));
        $host = $this->hosts['4'];
        $this->hosts['4'] = function ($timeout) use ($host) {
            // The host starts only once App 4's accounts were read: staff act now.
            ApiWrapper::$accounts[0]['status'] = 'Terminated';
            return $host($timeout);
        };
        $lines = explode("\n", $this->controller()->call_Daily());
        $this->assertSame('Terminated', ApiWrapper::$accounts[0]['status'], 'staff\'s Terminated stays');
        $this->assertSame(array(array('id' => '4', 'status' => 'Terminated')), ApiWrapper::$edits, 'only the account still as sent is written');
        $this->assertStringStartsWith('App #4 "CloudPe EU": 4 accounts read, 1 changed, 1 changed meanwhile (not written), 1 unchanged, 0 skipped, 1 errors;', $lines[0]);
        $this->assertStringContainsString('sync App #4: account #1: Suspended from CloudPe not written: the account changed while the sync ran (sent as Active, now Terminated)', HbLog::text());
        $this->assertSame(array(), HBRegistry::$db->accountLog('1'), 'nothing recorded for it');
    }

    /** Issue 25 item 3: an account moved to another App meanwhile is not written either. */
    public function testAnAccountMovedToAnotherAppMeanwhileIsNotWritten()
    {
        $this->healthyApp4();
        $this->app('5', 'report', self::report('sync', array('dry_run' => false, 'decisions' => array(), 'summary' => array())));
        $host = $this->hosts['4'];
        $this->hosts['4'] = function ($timeout) use ($host) {
            ApiWrapper::$accounts[3]['server_id'] = '5';
            return $host($timeout);
        };
        $output = $this->controller()->call_Daily();
        $this->assertSame(array(array('id' => '1', 'status' => 'Suspended')), ApiWrapper::$edits);
        $this->assertStringContainsString('1 changed, 1 changed meanwhile (not written)', $output);
        $this->assertStringContainsString('account #4: Terminated from CloudPe not written: the account changed while the sync ran (sent as Active, now on App #5)', HbLog::text());
    }

    /**
     * Issue 24 item 1: a module that decides for an account it was not sent (App 5's #6, and an
     * id HostBill has not), twice for one account, or from another status than the one sent gets
     * nothing written for those: each is refused and logged as a contract violation.
     */
    public function testDecisionsForAccountsNotSentOrTwiceAreRefused()
    {
        $decisions = array(
            array('account_id' => 6, 'decision' => 'change', 'from' => 'Active', 'to' => 'Terminated', 'facts' => array()),
            array('account_id' => 999, 'decision' => 'change', 'from' => 'Active', 'to' => 'Terminated', 'facts' => array()),
            array('account_id' => 1, 'decision' => 'change', 'from' => 'Active', 'to' => 'Suspended', 'facts' => array()),
            array('account_id' => 1, 'decision' => 'change', 'from' => 'Active', 'to' => 'Terminated', 'facts' => array()),
            array('account_id' => 2, 'decision' => 'change', 'from' => 'Active', 'to' => 'Terminated', 'facts' => array()),
            array('account_id' => '3', 'decision' => 'unchanged'),
            array('account_id' => 3, 'decision' => 'unchanged'),
            array('account_id' => '01', 'decision' => 'unchanged'),
            // The host's own answer to a row it could not read names no account: an error, not a violation.
            array('account_id' => null, 'decision' => 'error', 'error' => array('kind' => 'bad-input', 'message' => 'account row 9 of the request is not valid: x; HostBill left unchanged')),
        );
        $this->app('4', 'report', self::report('sync', array('dry_run' => false, 'decisions' => $decisions, 'summary' => array('requests' => 1, 'elapsed_ms' => 5))));
        $this->app('5', 'report', self::report('sync', array('dry_run' => false, 'decisions' => array(), 'summary' => array())));
        $lines = explode("\n", $this->controller()->call_Daily());
        $this->assertSame(array(array('id' => '1', 'status' => 'Suspended')), ApiWrapper::$edits, 'only the first decision for account #1, which was sent');
        $this->assertSame('App #4 "CloudPe EU": 4 accounts read, 1 changed, 1 unchanged, 0 skipped, 1 errors; 1 CloudPe requests in 0.0 s; first error: account #?: account row 9 of the request is not valid: x; HostBill left unchanged; 6 decisions refused (module contract violation: a decision for account #6, which this sync did not send, ...)', $lines[0]);
        $log = HbLog::text();
        foreach (array('a decision for account #6, which this sync did not send', 'a decision for account #999, which this sync did not send', 'a second decision for account #1', 'a change of account #2 from Active, but the sync sent it as Suspended', 'a second decision for account #3', 'a decision for account #01, which this sync did not send') as $refused) {
            $this->assertStringContainsString("error CloudPe Module: sync App #4: refused {$refused} (module contract violation", $log);
        }
        $this->assertSame('Suspended', ApiWrapper::$accounts[1]['status']);
        $this->assertSame('Active', ApiWrapper::$accounts[6]['status'], 'App 5\'s account untouched');
        $this->assertSame(array(), HBRegistry::$db->accountLog('6'));
    }

    /**
     * Issue 25 item 4 / issue 24 item 8: an App whose report PHP cannot take (more than it may
     * hold, not JSON, cut short, a decision too large) fails alone with a clear message; the
     * other App is synced and nothing of the failed one is written.
     *
     * @dataProvider unusableReports
     */
    public function testAnUnusableReportFailsOnlyItsApp($stdout, $reason)
    {
        $this->healthyApp4();
        file_put_contents("{$this->dir}/bad-report.json", $stdout);
        $this->hosts['5'] = function ($timeout) {
            $host = $this->fakeHost('report', array(), 0, $timeout, 'app5');
            copy("{$this->dir}/bad-report.json", "{$this->dir}/report-app5.json");
            $host->limitHeld(4096);
            return $host;
        };
        $lines = explode("\n", $this->controller()->call_Daily());
        $this->assertCount(2, $lines);
        $this->assertStringStartsWith('App #4 "CloudPe EU": 4 accounts read, 2 changed', $lines[0]);
        $this->assertStringStartsWith('App #5 "CloudPe US": FAILED (2 accounts read, 0 changed, 0 errors): ', $lines[1]);
        $this->assertStringContainsString($reason, $lines[1]);
        $this->assertStringContainsString('sync App #5 "CloudPe US": ', HbLog::text(), 'in the system log too');
        $this->assertSame(array(array('id' => '1', 'status' => 'Suspended'), array('id' => '4', 'status' => 'Terminated')), ApiWrapper::$edits);
    }

    public function unusableReports()
    {
        $change = '{"account_id":6,"decision":"change","from":"Active","to":"Suspended","facts":{}}';
        $big = str_repeat('x', 8000);
        return array(
            'logs larger than PHP may hold' => array('{"operation":"sync","decisions":[' . $change . '],"ok":true,"logs":[{"level":"info","message":"' . $big . '"}]}', 'the host stopped: the member "logs" of the report is larger than 4 KiB, more than this PHP may hold (memory_limit)'),
            'members together larger than PHP may hold' => array('{"operation":"sync","decisions":[' . $change . '],"ok":true,"summary":{"note":"' . substr($big, 0, 3000) . '"},"meter":{"note":"' . substr($big, 0, 3000) . '"}}', 'the host stopped: the report\'s members other than its decisions take more than 4 KiB (at the member "meter")'),
            'a decision larger than PHP may hold' => array('{"operation":"sync","decisions":[' . $change . ',{"account_id":7,"decision":"unchanged","facts":{"a":"' . $big . '"}}],"ok":true}', 'decision #2 of the report is larger than 4 KiB, more than this PHP may hold (memory_limit)'),
            'malformed' => array('{"operation":"sync","decisions":[' . $change . ',{"account_id":7,,}],"ok":true}', 'not its report during sync (decision #2 is not valid JSON (at byte 114): Syntax error)'),
            'cut short' => array('{"operation":"sync","decisions":[' . $change, 'not its report during sync (the report ends early (after byte 113))'),
            'not JSON' => array('<html>502</html>', 'not its report during sync (the report is not a JSON object (at byte 0))'),
        );
    }

    /** Issue 9, break 4, for the cron: a disabled proc_open is named on every App's line. */
    public function testADisabledProcOpenIsAClearMessageInTheCron()
    {
        foreach (array('4', '5') as $id) {
            $this->hosts[$id] = function ($timeout) use ($id) {
                $host = $this->fakeHost('report', array(), 0, $timeout, "app{$id}");
                $host->checkEnvironmentWith(function ($function) {
                    return $function !== 'proc_open';
                });
                return $host;
            };
        }
        $output = $this->controller()->call_Daily();
        $lines = explode("\n", $output);
        $this->assertCount(2, $lines);
        foreach ($lines as $line) {
            $this->assertStringContainsString('FAILED', $line);
            $this->assertStringContainsString('PHP cannot run the module host: proc_open is disabled (php.ini disable_functions)', $line);
        }
        $this->assertFileDoesNotExist($this->dir . '/args-app4.txt');
    }

    public function testWithoutAnyCloudpeAppNothingRuns()
    {
        HbApps::$rows = array_intersect_key(HbApps::$rows, array('9' => 1));
        $this->assertSame('CloudPe sync: no CloudPe App is set up (Settings → Apps), nothing done', $this->controller()->call_Daily());
        $this->assertSame(0, ApiWrapper::count('getAccounts'));
    }

    public function testAnAppWithoutDetailsIsReportedAndTheOthersSynced()
    {
        $this->healthyApp4();
        HbApps::add('6', 'CloudPe broken', array(), null);
        $servers = new class {
            public function getServerDetails($id)
            {
                $model = new HbServersModel();
                return (string) $id === '6' ? false : $model->getServerDetails($id);
            }
        };
        $this->app('5', 'report', self::report('sync', array('dry_run' => false, 'decisions' => array(), 'summary' => array())));
        $output = cloudpe_sync::daily($this->controller()->module, false, new cloudpe_apps(null, $servers));
        $this->assertStringContainsString('App #6 "CloudPe broken": FAILED (0 accounts read, 0 changed, 0 errors): HostBill returned no details for App #6', $output);
        $this->assertStringContainsString('App #4 "CloudPe EU": 4 accounts read, 2 changed', $output);
    }

    public function testAppsThatCannotBeListedAreAClearMessage()
    {
        $api = new class {
            public function getAppGroups($params)
            {
                return array('success' => false, 'error' => array('API access denied'));
            }
        };
        $output = cloudpe_sync::daily($this->controller()->module, false, new cloudpe_apps($api));
        $this->assertSame('CloudPe sync: could not list the CloudPe Apps: HostBill did not list its App groups (getAppGroups): API access denied', $output);
        $this->assertStringContainsString('could not list the CloudPe Apps', HbLog::text());
    }

    /** Issue 25 item 8: a HostBill without getAppGroups lists the Apps through findServersBy. */
    public function testAppsAreListedWithoutGetAppGroupsOnAnOlderHostBill()
    {
        $this->healthyApp4();
        $this->app('5', 'report', self::report('sync', array('dry_run' => false, 'decisions' => array(), 'summary' => array())));
        $older = new class {
            // An Admin API without getAppGroups / getAppServers.
        };
        $this->assertSame(array(array('id' => '4', 'name' => 'CloudPe EU'), array('id' => '5', 'name' => 'CloudPe US')), (new cloudpe_apps($older))->all());
        $lines = explode("\n", cloudpe_sync::daily($this->controller()->module, false, new cloudpe_apps($older)));
        $this->assertStringStartsWith('App #4 "CloudPe EU": 4 accounts read, 2 changed', $lines[0]);
        $this->assertStringStartsWith('App #5 "CloudPe US": 2 accounts read', $lines[1]);

        $neither = new class {
            public function getServerDetails($id)
            {
                return false;
            }
        };
        $this->assertSame('CloudPe sync: could not list the CloudPe Apps: this HostBill offers neither the Admin API call getAppGroups nor the Servers model\'s findServersBy, the two ways the module knows to list its Apps', cloudpe_sync::daily($this->controller()->module, false, new cloudpe_apps($older, $neither)));
    }

    public function testTheOldEveryRunTaskDoesNotFail()
    {
        $this->assertStringContainsString('nothing to do', $this->controller()->call_EveryRun());
    }

    /** install() and upgrade() register the daily task once, in either hb_cron_tasks schema. */
    public function testInstallAndUpgradeRegisterTheDailyTaskIdempotently()
    {
        foreach (array(false, true) as $profileId) {
            HBRegistry::$db = new HostBillTestDb($profileId);
            HBRegistry::$db->insertRow('hb_modules_configuration', self::moduleRow('1.0.3'));
            // 1.0.x's every-run row, with a schedule of the admin's (the columns install.sql requires).
            HBRegistry::$db->insertRow('hb_cron_tasks', array(
                'task' => 'custom:7:call_EveryRun', 'name' => 'Module - CloudPe, every run', 'lastrun' => '0000-00-00 00:00:00', 'status' => '1',
                'metadata' => '', 'output' => '', 'run_every' => 'Hour', 'run_every_time' => '1',
            ));
            $module = new cloudpe();
            $this->assertTrue($module->upgrade('1.0.3'));
            $this->assertTrue($module->install());
            $this->assertTrue($module->upgrade('2.1.0'));
            // The rows in primary key (task) order, as the table holds them.
            $rows = array_column(HBRegistry::$db->tables['hb_cron_tasks'], null, 'task');
            $this->assertSame(array('custom:7:call_Daily', 'custom:7:call_EveryRun', 'custom:7:call_Hourly', 'custom:7:call_Monthly'), array_keys($rows), $profileId ? 'with profile_id' : 'without profile_id');
            $this->assertSame(array('Hour', '1'), array($rows['custom:7:call_EveryRun']['run_every'], $rows['custom:7:call_EveryRun']['run_every_time']), "the admin's schedule is kept");
            $monthly = $rows['custom:7:call_Monthly'];
            $this->assertSame(array('Module - CloudPe, monthly reconciliation', 'Month', '1'), array($monthly['name'], $monthly['run_every'], $monthly['run_every_time']));
            $this->assertStringContainsString('the task custom:7:call_EveryRun is already registered', HbLog::text(), '1.0.x\'s every-run row is kept, with its schedule');
            $this->assertArrayHasKey('hb_cloudpe_retries', HBRegistry::$db->tables, 'the retry queue exists');
            $daily = $rows['custom:7:call_Daily'];
            $this->assertSame(array('Module - CloudPe, daily cron call', '1', 'Time', '1200'), array($daily['name'], $daily['status'], $daily['run_every'], $daily['run_every_time']));
            $this->assertStringContainsString('registered the daily sync task custom:7:call_Daily', HbLog::text());
            $this->assertStringContainsString('the daily sync task custom:7:call_Daily is already registered', HbLog::text());
            $this->assertSame(array(), $module->recordedErrors());
        }
    }

    /** Issue 25 item 7: over 1.0.x, its flags and its '02:00' schedule become what 2.x needs, once. */
    public function testUpgradeOver10xBringsTheFlagsAndSchedulesToWhatTheModuleNeeds()
    {
        HBRegistry::$db->insertRow('hb_modules_configuration', array('settings' => '|haveadmin|extras_menu|') + self::moduleRow('1.0.3'));
        foreach (array('call_Daily' => 'Module - CloudPe, daily cron call', 'call_EveryRun' => 'Module - CloudPe, every run') as $method => $name) {
            HBRegistry::$db->insertRow('hb_cron_tasks', array('task' => "custom:7:{$method}", 'name' => $name, 'lastrun' => '0000-00-00 00:00:00', 'status' => '1', 'count' => '0', 'metadata' => '', 'output' => '', 'run_every' => 'Time', 'run_every_time' => '02:00'));
        }
        $module = new cloudpe();
        $this->assertTrue($module->upgrade('1.0.3'));
        $schedule = array();
        foreach (HBRegistry::$db->tables['hb_cron_tasks'] as $row) {
            $schedule[$row['task']] = array($row['run_every'], $row['run_every_time']);
        }
        $this->assertSame(array('custom:7:call_Daily' => array('Time', '0200'), 'custom:7:call_EveryRun' => array('Run', '1200'), 'custom:7:call_Hourly' => array('Hour', '1'), 'custom:7:call_Monthly' => array('Month', '1')), $schedule);
        $this->assertSame('|havecron|', HBRegistry::$db->tables['hb_modules_configuration'][0]['settings']);
        $log = HbLog::text();
        $this->assertStringContainsString('upgrade from 1.0.3: the task custom:7:call_EveryRun was scheduled Time 02:00, now Run 1200', $log);
        $this->assertStringContainsString('upgrade from 1.0.3: the task custom:7:call_Daily was scheduled Time 02:00, now Time 0200', $log);
        $this->assertStringContainsString("upgrade from 1.0.3: the module's flags were |haveadmin|extras_menu|, now |havecron|", $log);

        HBRegistry::$db->log = array();
        HbLog::$lines = array();
        $this->assertTrue($module->upgrade('2.2.0'));
        $this->assertSame(array(), array_values(array_filter(HBRegistry::$db->log, function ($sql) {
            return stripos($sql, 'UPDATE hb_') === 0 || stripos($sql, 'INSERT') === 0;
        })), 'idempotent: nothing is written the second time');
        $this->assertStringContainsString("the module's flags are already |havecron|", HbLog::text());
        $this->assertSame(array(), $module->recordedErrors());
    }

    /**
     * This module's hb_modules_configuration row (id 7) as HostBill holds an activated module's:
     * the columns and value shapes of the rows HostBill's install.sql inserts (see
     * fixtures/hostbill-tables.sql).
     */
    public static function moduleRow($version)
    {
        return array(
            'id' => '7', 'module' => 'CloudPe', 'type' => 'Hosting', 'config' => 'a:0:{}', 'filename' => 'class.cloudpe.php',
            'version' => $version, 'active' => '1', 'modname' => 'CloudPe', 'subtype' => '0', 'sort_order' => '0', 'settings' => '', 'access' => '',
        );
    }

    public function testUpgradeWithoutTheModuleRowSaysWhatToDo()
    {
        $module = new cloudpe();
        $this->assertTrue($module->upgrade('1.0.3'), 'an upgrade is never failed by the task');
        $this->assertStringContainsString('HostBill has no module row for class.cloudpe.php (hb_modules_configuration): activate CloudPe', HbLog::text());
        $this->assertSame(array(), HBRegistry::$db->tables['hb_cron_tasks']);
    }

    public function testLeftoverFilesOf10xAreFound()
    {
        $this->assertSame(array(), cloudpe::leftoverFiles(), 'the bundle itself has none');
        mkdir($this->dir . '/admin');
        touch($this->dir . '/admin/class.cloudpe_controller.php');
        touch($this->dir . '/admin/default.tpl');
        $this->assertSame(array('admin/class.cloudpe_controller.php', 'admin/default.tpl'), cloudpe::leftoverFiles($this->dir));
        unlink($this->dir . '/admin/class.cloudpe_controller.php');
        unlink($this->dir . '/admin/default.tpl');
        rmdir($this->dir . '/admin');
        $this->assertStringContainsString('delete includes/modules/Hosting/cloudpe/admin/class.cloudpe_controller.php and admin/default.tpl', cloudpe::leftoverMessage());
    }

    /**
     * A leftover 1.0.x admin controller loaded before the cron controller: a system-log line, not
     * PHP's fatal "Cannot declare class cloudpe_controller". Run in a separate PHP process, where
     * the old class can be declared first.
     */
    public function testALeftoverAdminControllerIsAMessageNotAFatal()
    {
        $script = $this->dir . '/collision.php';
        file_put_contents($script, '<?php
require ' . var_export(__DIR__ . '/doubles.php', true) . ';
HostBillDoubles::reset();
// What 1.0.x\'s admin/class.cloudpe_controller.php declares, loaded first by HostBill:
class cloudpe_controller extends HBController { public $module; }
require ' . var_export(__DIR__ . '/../includes/modules/Hosting/cloudpe/cron/class.cloudpe_controller.php', true) . ';
echo "still running\n", HbLog::text(), "\n";
');
        $pipes = array();
        $process = proc_open(array(PHP_BINARY, $script), array(1 => array('pipe', 'w'), 2 => array('pipe', 'w')), $pipes);
        $out = stream_get_contents($pipes[1]);
        $err = stream_get_contents($pipes[2]);
        $exit = proc_close($process);
        $this->assertSame(0, $exit, $out . $err);
        $this->assertStringNotContainsString('Fatal error', $out . $err);
        $this->assertSame('', $err);
        $this->assertStringContainsString('still running', $out);
        $this->assertStringContainsString('error CloudPe Module: CloudPe module: files of version 1.0.x are still installed', $out);
    }
}
