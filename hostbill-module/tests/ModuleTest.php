<?php

/** class cloudpe: every action, translated from the host's report into HostBill's terms. */
class ModuleTest extends FakeHostTestCase
{
    public function testSuspendSendsTheAppAndAccountAndReportsSuccess()
    {
        $report = self::report('suspend', array('outcome' => array('message' => 'CloudPe user 1234 set to status 2 (inactive)')), array(
            array('level' => 'info', 'source' => 'module', 'message' => 'suspend: CloudPe user 1234 set to status 2'),
            array('level' => 'debug', 'source' => 'module', 'message' => 'setaccountstatus -> HTTP 200'),
        ));
        $module = $this->module($this->fakeHost('report', $report));
        $this->assertTrue($module->Suspend());
        $this->assertSame(array('CloudPe user 1234 set to status 2 (inactive)'), $module->recordedInfos());
        $this->assertSame(array(), $module->recordedErrors());
        $sent = $this->sentRequest();
        $this->assertSame('https://api.cloudpe.example.com', $sent['app']['status_url']);
        $this->assertSame(self::TOKEN, $sent['app']['field2'], 'the host needs the token');
        $this->assertSame(array('id' => 101, 'client_id' => 11, 'status' => 'Active', 'custom_fields' => array('cloudpeid' => '1234')), $sent['account']);
        $this->assertSame('suspend', $this->sentArgs()[0]);
        $this->assertSame(array(array('system', 'suspend: CloudPe user 1234 set to status 2', 'CloudPe Module')), HbLog::$lines, 'debug records stay out of the log');
    }

    /** @dataProvider actions */
    public function testEveryActionRunsItsOperation($method, $operation)
    {
        $module = $this->module($this->fakeHost('report', self::report($operation, array('outcome' => array('message' => 'ok')))));
        $this->assertTrue($module->$method());
        $this->assertSame($operation, $this->sentArgs()[0]);
    }

    public function actions()
    {
        return array(array('Create', 'create'), array('Suspend', 'suspend'), array('Unsuspend', 'unsuspend'), array('Terminate', 'terminate'));
    }

    /** @dataProvider failures */
    public function testEachFailureKindIsAnErrorForTheAdmin($exit, $kind)
    {
        $message = "CloudPe said no ({$kind})";
        $report = self::report('suspend', array('error' => array('kind' => $kind, 'message' => $message, 'code' => null)));
        $module = $this->module($this->fakeHost('report', $report, $exit));
        $this->assertFalse($module->Suspend());
        $this->assertSame(array($message), $module->recordedErrors());
        $this->assertStringContainsString("suspend failed ({$kind}): {$message}", HbLog::text());
        $this->assertSame('error', HbLog::$lines[0][0]);
    }

    public function failures()
    {
        $cases = array();
        foreach (array('configuration', 'not-found', 'authentication', 'remote-api', 'transport', 'unexpected') as $kind) {
            $cases[$kind] = array(1, $kind);
        }
        $cases['bad-input'] = array(2, 'bad-input');
        $cases['module-trapped'] = array(3, 'module-trapped');
        $cases['module-refused'] = array(3, 'module-refused');
        $cases['egress-denied'] = array(3, 'egress-denied');
        return $cases;
    }

    public function testAClientWithoutCloudpeidIsSentWithoutIt()
    {
        $module = $this->module($this->fakeHost('report', self::report('suspend', array('error' => array(
            'kind' => 'configuration', 'message' => 'client #11 has no `cloudpeid` custom field value', 'code' => null,
        ))), 1));
        ApiWrapper::$clients[11] = array('firstname' => 'Ann');
        $this->assertFalse($module->Suspend());
        $this->assertSame(array(), $this->sentRequest()['account']['custom_fields']);
        $this->assertStringContainsString('client #11', $module->recordedErrors()[0]);
    }

    public function testTheClientFieldCodeIsConfigurable()
    {
        $module = $this->module($this->fakeHost('report', self::report('suspend', array('outcome' => array('message' => 'ok')))), array('field3' => 'cpid'));
        ApiWrapper::$clients[11] = array('cpid' => '55', 'cloudpeid' => '1');
        $module->Suspend();
        $this->assertSame(array('cpid' => '55'), $this->sentRequest()['account']['custom_fields']);
        $this->assertSame('cpid', $this->sentRequest()['app']['field3']);
    }

    /** @dataProvider spellings */
    public function testBothConnectSpellingsAreAccepted($connect, $host, $secure)
    {
        $module = $this->module($this->fakeHost('report', self::report('test-connection', array('checks' => array()))), $connect);
        $module->testConnection();
        $app = $this->sentRequest()['app'];
        $this->assertSame($host, $app['host']);
        $this->assertSame($secure, $app['secure']);
    }

    public function spellings()
    {
        return array(
            'host/secure' => array(array('host' => 'a.example', 'secure' => '1'), 'a.example', '1'),
            'hostname/ssl' => array(array('host' => '', 'hostname' => 'b.example', 'ssl' => 'on'), 'b.example', 'on'),
        );
    }

    public function testMissingBinaryFailsWithAClearMessage()
    {
        $module = $this->module(new cloudpe_host('/nonexistent/bin/hostbill-module-host', __FILE__, 5, array(self::TOKEN)));
        $this->assertFalse($module->Suspend());
        $this->assertStringContainsString('does not exist', $module->recordedErrors()[0]);
        $this->assertStringContainsString('does not exist', HbLog::text());
    }

    public function testAHostTimeoutFailsTheAction()
    {
        $module = $this->module($this->fakeHost('sleep', array(), 0, 1));
        $this->assertFalse($module->Unsuspend());
        $this->assertStringContainsString('did not finish unsuspend within 1 s', $module->recordedErrors()[0]);
    }

    public function testGarbageOutputFailsTheAction()
    {
        $module = $this->module($this->fakeHost('garbage'));
        $this->assertFalse($module->Create());
        $this->assertStringContainsString('not its report', $module->recordedErrors()[0]);
    }

    public function testTheTokenIsNeverLoggedEvenIfTheHostLeaksIt()
    {
        $leaky = self::report('suspend', array('error' => array('kind' => 'authentication', 'message' => 'session [' . self::TOKEN . '] is not valid', 'code' => 702)), array(
            array('level' => 'info', 'source' => 'module', 'message' => 'token=' . self::TOKEN),
            array('level' => 'error', 'source' => 'module', 'message' => 'session=' . urlencode(self::TOKEN)),
        ));
        $module = $this->module($this->fakeHost('report', $leaky, 1));
        $this->assertFalse($module->Suspend());
        putenv('FAKE_HOST_ECHO=' . self::TOKEN);
        $this->fakeHost('garbage');
        $this->assertFalse($module->Suspend());
        $this->assertNotEmpty(HbLog::$lines);
        $this->assertNoToken($module);
    }

    public function testTestConnectionReportsBothChecks()
    {
        $checks = array(array('name' => 'API reachable', 'passed' => true, 'detail' => 'ok'), array('name' => 'Admin credentials', 'passed' => true, 'detail' => '7 visible'));
        $module = $this->module($this->fakeHost('report', self::report('test-connection', array('checks' => $checks))));
        $this->assertTrue($module->testConnection());
        $this->assertStringContainsString('Admin credentials: passed (7 visible)', $module->recordedInfos()[0]);

        $checks[1]['passed'] = false;
        $failed = self::report('test-connection', array('checks' => $checks, 'error' => array('kind' => 'connection-check-failed', 'message' => 'Admin credentials: rejected', 'code' => null)));
        $module = $this->module($this->fakeHost('report', $failed, 1));
        $this->assertFalse($module->testConnection());
        $this->assertSame(array('Admin credentials: rejected'), $module->recordedErrors());
    }

    public function testGetSynchInfoRecordsAChangedStatusWithEditAccountDetails()
    {
        $change = array('account_id' => 101, 'decision' => 'change', 'from' => 'Active', 'to' => 'Suspended', 'facts' => array());
        $module = $this->module($this->fakeHost('report', self::report('sync', array('decisions' => array($change), 'dry_run' => false))));
        $this->assertSame(array('status' => 'Suspended'), $module->getSynchInfo());
        $this->assertSame(array(array('id' => 101, 'status' => 'Suspended')), ApiWrapper::$edits);

        $unchanged = array('account_id' => 101, 'decision' => 'unchanged', 'facts' => array());
        $module = $this->module($this->fakeHost('report', self::report('sync', array('decisions' => array($unchanged)))));
        ApiWrapper::$edits = array();
        $this->assertSame(array('status' => 'Active'), $module->getSynchInfo());
        $this->assertSame(array(), ApiWrapper::$edits, 'nothing written when nothing changed');

        $error = array('account_id' => 101, 'decision' => 'error', 'error' => array('kind' => 'not-found', 'message' => 'no user 1234'));
        $module = $this->module($this->fakeHost('report', self::report('sync', array('decisions' => array($error)))));
        $this->assertFalse($module->getSynchInfo());
        $this->assertSame(array('no user 1234'), $module->recordedErrors());
        $this->assertSame(array(), ApiWrapper::$edits);
    }
}
