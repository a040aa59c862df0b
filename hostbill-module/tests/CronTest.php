<?php

/** The daily cron: paging, one id read per client, one host sync, only changes written. */
class CronTest extends FakeHostTestCase
{
    private function controller(cloudpe $module)
    {
        $controller = new cloudpe_controller();
        $controller->module = $module;
        return $controller;
    }

    private function accounts()
    {
        // Five accounts on App 4 (clients 11 and 12 own two each), one on another App.
        ApiWrapper::$accounts = array(
            array('id' => 1, 'client_id' => 11, 'server_id' => 4, 'status' => 'Active'),
            array('id' => 2, 'client_id' => 11, 'server_id' => 4, 'status' => 'Suspended'),
            array('id' => 3, 'client_id' => 12, 'server_id' => 4, 'status' => 'Active'),
            array('id' => 4, 'client_id' => 12, 'server_id' => 4, 'status' => 'Active'),
            array('id' => 5, 'client_id' => 13, 'server_id' => 4, 'status' => 'Pending'),
            array('id' => 6, 'client_id' => 14, 'server_id' => 9, 'status' => 'Active'),
        );
        ApiWrapper::$clients = array(11 => array('cloudpeid' => '100'), 12 => array('cloudpeid' => '200'), 13 => array(), 14 => array('cloudpeid' => '400'));
        ApiWrapper::$perPage = 2;
    }

    private function decisions()
    {
        return array(
            array('account_id' => 1, 'decision' => 'change', 'from' => 'Active', 'to' => 'Suspended', 'facts' => array()),
            array('account_id' => 2, 'decision' => 'unchanged', 'facts' => array()),
            array('account_id' => 3, 'decision' => 'error', 'error' => array('kind' => 'not-found', 'message' => 'CloudPe has no user with uid 200')),
            array('account_id' => 4, 'decision' => 'change', 'from' => 'Active', 'to' => 'Terminated', 'facts' => array()),
            array('account_id' => 5, 'decision' => 'skipped', 'reason' => 'HostBill status Pending is not synced'),
        );
    }

    private static function summary()
    {
        return array('accounts' => 5, 'change' => 2, 'unchanged' => 1, 'skipped' => 1, 'error' => 1, 'requests' => 3, 'elapsed_ms' => 260);
    }

    public function testDailyReadsEveryPageOnceAndWritesOnlyTheChanges()
    {
        $this->accounts();
        $report = self::report('sync', array('dry_run' => false, 'decisions' => $this->decisions(), 'summary' => self::summary()));
        $module = $this->module($this->fakeHost('report', $report));
        ApiWrapper::$clients = array(11 => array('cloudpeid' => '100'), 12 => array('cloudpeid' => '200'), 13 => array(), 14 => array('cloudpeid' => '400'));
        $summary = $this->controller($module)->call_Daily();

        $this->assertSame(3, ApiWrapper::count('getAccounts'), 'five accounts, two per page');
        $pages = array_map(function ($c) { return $c[1]['page']; }, array_values(array_filter(ApiWrapper::$calls, function ($c) { return $c[0] === 'getAccounts'; })));
        $this->assertSame(array(0, 1, 2), $pages);
        $this->assertSame(3, ApiWrapper::count('getClientDetails'), 'each client once');
        $this->assertSame('sync', $this->sentArgs()[0], 'one host sync');
        $sent = $this->sentRequest()['accounts'];
        $this->assertSame(array(1, 2, 3, 4, 5), array_column($sent, 'id'), 'only the App\'s accounts');
        $this->assertSame(array('cloudpeid' => '200'), $sent[3]['custom_fields']);
        $this->assertSame(array(), $sent[4]['custom_fields']);
        $this->assertSame(array(array('id' => 1, 'status' => 'Suspended'), array('id' => 4, 'status' => 'Terminated')), ApiWrapper::$edits);
        $this->assertStringContainsString('account #3: CloudPe has no user with uid 200', HbLog::text());
        $this->assertSame('CloudPe sync: 5 accounts, 2 updated, 1 unchanged, 1 skipped, 1 errors; 3 CloudPe requests in 0.3 s', $summary);
        $this->assertNoToken($module);
    }

    public function testADryRunWritesNothing()
    {
        $this->accounts();
        $report = self::report('sync', array('dry_run' => true, 'decisions' => $this->decisions(), 'summary' => self::summary()));
        $module = $this->module($this->fakeHost('report', $report));
        $summary = (new cloudpe_sync($module))->run(true);
        $this->assertContains('--dry-run', $this->sentArgs());
        $this->assertSame(array(), ApiWrapper::$edits);
        $this->assertStringContainsString('2 would change (dry run, nothing written)', $summary);
    }

    public function testAFailedSyncWritesNothingAndSaysSo()
    {
        $this->accounts();
        $module = $this->module($this->fakeHost('report', self::report('sync', array('error' => array('kind' => 'authentication', 'message' => 'CloudPe rejected the session token', 'code' => null))), 1));
        $this->assertSame('CloudPe sync failed: CloudPe rejected the session token', $this->controller($module)->call_Daily());
        $this->assertSame(array(), ApiWrapper::$edits);

        $module = $this->module($this->fakeHost('crash'));
        $this->assertSame('CloudPe sync failed: see the system log', $this->controller($module)->call_Daily());
        $this->assertStringContainsString('crashed during sync', HbLog::text());
    }

    public function testWithoutAnAppNothingRuns()
    {
        $module = new cloudpe();
        $module->useHost($this->fakeHost('report', array()));
        $this->assertSame('CloudPe sync: no App connected, nothing done', $this->controller($module)->call_Daily());
        $this->assertFileDoesNotExist($this->dir . '/args.txt');
    }
}
