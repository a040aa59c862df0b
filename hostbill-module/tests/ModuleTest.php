<?php

/** class cloudpe: settings, every action, translated from the host's report into HostBill's terms. */
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
        $this->assertSame(array('id' => '101', 'client_id' => '11', 'status' => 'Active', 'custom_fields' => array('cloudpeid' => '1234')), $sent['account']);
        $this->assertSame('suspend', $this->sentArgs()[0]);
        $this->assertSame(array(
            array('system', 'suspend: CloudPe user 1234 set to status 2', 'CloudPe Module'),
            array('system', 'suspend of account #101: ok', 'CloudPe Module'),
        ), HbLog::$lines, 'debug records stay out of the log; one line for the action');
    }

    public function testTheAppIsDeclaredWithHostBillsRealFields()
    {
        $module = new cloudpe();
        $fields = $module->declared('serverFields');
        foreach (array('field3', 'field4', 'field5') as $missing) {
            $this->assertArrayNotHasKey($missing, $fields, "HostBill's App table has no {$missing}");
        }
        $this->assertTrue($fields[HostingModule::CONNECTION_FIELD_STATUSURL]);
        $this->assertTrue($fields[HostingModule::CONNECTION_FIELD_INPUT1]);
        $this->assertTrue($fields[HostingModule::CONNECTION_FIELD_INPUT2]);
        $custom = $fields[HostingModule::CONNECTION_FIELD_CUSTOM];
        $this->assertSame(array('Client field code', 'On terminate', 'On create', 'Call log', 'Usage import', 'Usage backfill hours', 'Usage time zone', 'Usage test CSV folder'), array_keys($custom));
        $this->assertSame(array('type' => 'select', 'default' => array('link', 'provision')), array_intersect_key($custom['On create'], array('type' => 1, 'default' => 1)), 'Create links unless the admin turns provisioning on');
        $this->assertStringContainsString('EXPERIMENTAL', $custom['On create']['description']);
        $this->assertStringContainsString('account.destroy.period', $custom['On terminate']['description'], 'the admin learns CloudPe deletes deactivated users by itself');
        $this->assertSame(array('type' => 'select', 'default' => array('off', 'test', 'on')), array_intersect_key($custom['Usage import'], array('type' => 1, 'default' => 1)), 'the usage import is off unless the admin turns it on');
        $this->assertSame(array('type' => 'select', 'default' => array('off', 'on')), array_intersect_key($custom['Call log'], array('type' => 1, 'default' => 1)), 'the call log is off unless the admin turns it on');
        $this->assertSame(array('type' => 'input', 'default' => 'cloudpeid'), array_intersect_key($custom['Client field code'], array('type' => 1, 'default' => 1)));
        $this->assertSame(array('type' => 'select', 'default' => array('none', 'deactivate')), array_intersect_key($custom['On terminate'], array('type' => 1, 'default' => 1)));
        $labels = $module->declared('serverFieldsDescription');
        $this->assertSame('Host URL', $labels[HostingModule::CONNECTION_FIELD_STATUSURL]);
        $this->assertSame('App Id', $labels[HostingModule::CONNECTION_FIELD_INPUT1]);
        $this->assertSame('Session', $labels[HostingModule::CONNECTION_FIELD_INPUT2]);
    }

    /** @dataProvider customShapes */
    public function testCustomSettingsReachTheHostWhateverShapeHostBillHandsThem($raw, $custom, $expected)
    {
        HbServersModel::$rawCustom = $raw;
        $module = $this->module($this->fakeHost('report', self::report('terminate', array('outcome' => array('message' => 'ok')))), array(), $custom);
        ApiWrapper::$clients['11'] = array('cpid' => '55', 'cloudpeid' => '1');
        $this->assertTrue($module->Terminate(), implode('; ', $module->recordedErrors()));
        $app = $this->sentRequest()['app'];
        $this->assertSame($expected, $app['custom']);
        foreach (array('field3', 'field4', 'field5') as $gone) {
            $this->assertArrayNotHasKey($gone, $app);
        }
        $code = $expected['Client field code'];
        $this->assertSame(array($code => $code === 'cpid' ? '55' : '1'), $this->sentRequest()['account']['custom_fields'], 'the client field is read by the configured code');
    }

    public function customShapes()
    {
        $set = array('Client field code' => ' cpid ', 'On terminate' => 'deactivate');
        $expected = array('Client field code' => 'cpid', 'On terminate' => 'deactivate');
        $defaults = array('Client field code' => 'cloudpeid', 'On terminate' => 'none');
        return array(
            'unserialized array' => array(false, $set, $expected),
            'serialized column' => array(true, $set, $expected),
            'absent (empty column)' => array(true, null, $defaults),
            'empty array' => array(false, array(), $defaults),
            'empty values' => array(false, array('Client field code' => '', 'On terminate' => ''), $defaults),
        );
    }

    public function testAnUnreadableCustomColumnIsAClearError()
    {
        $module = $this->module($this->fakeHost('report', self::report('suspend', array('outcome' => array('message' => 'ok')))));
        $row = self::appRow();
        $row['custom'] = 'O:8:"stdClass":0:{}garbage';
        $module->connect($row);
        $this->assertFalse($module->Suspend());
        $this->assertStringContainsString('custom settings (column `custom`)', $module->recordedErrors()[0]);
        $this->assertFileDoesNotExist($this->dir . '/args-host.txt', 'nothing ran');
        $this->assertSame(array('Client field code' => 'x'), cloudpe::parseCustom(serialize(array('Client field code' => array('value' => 'x')))));
    }

    /** Issue 25 item 8: a `custom` column holding JSON is read; JSON that is not settings is named. */
    public function testACustomColumnStoredAsJsonIsReadOrNamed()
    {
        $module = $this->module($this->fakeHost('report', self::report('terminate', array('outcome' => array('message' => 'ok')))));
        $row = self::appRow();
        $row['custom'] = json_encode(array('Client field code' => ' cpid ', 'On terminate' => 'deactivate'));
        $module->connect($row);
        ApiWrapper::$clients['11'] = array('cpid' => '55');
        $this->assertTrue($module->Terminate(), implode('; ', $module->recordedErrors()));
        $this->assertSame(array('Client field code' => 'cpid', 'On terminate' => 'deactivate'), $this->sentRequest()['app']['custom']);
        $this->assertSame(array('cpid' => '55'), $this->sentRequest()['account']['custom_fields']);

        foreach (array(
            '{"Client field code": "cpid",' => 'look like JSON but do not parse (Syntax error)',
            '["cpid", "deactivate"]' => 'are a JSON list, not an object of settings by name',
            'cpid;deactivate' => 'are neither a serialized array HostBill wrote nor JSON (they start with "cpid;deactiv")',
        ) as $column => $problem) {
            try {
                cloudpe::parseCustom($column);
                $this->fail("accepted {$column}");
            } catch (UnexpectedValueException $e) {
                $this->assertStringContainsString("the App's custom settings (column `custom`) {$problem}", $e->getMessage());
            }
        }
    }

    /** @dataProvider actions */
    public function testEveryActionRunsItsOperation($method, $operation)
    {
        $module = $this->module($this->fakeHost('report', self::report($operation, array('outcome' => array('message' => 'ok'), 'decisions' => array(array('account_id' => '101', 'decision' => 'unchanged'))))));
        $this->assertNotFalse($module->$method(), implode('; ', $module->recordedErrors()));
        $this->assertSame($operation, $this->sentArgs()[0]);
    }

    public function actions()
    {
        return array(
            'Create' => array('Create', 'create'), 'Suspend' => array('Suspend', 'suspend'), 'Unsuspend' => array('Unsuspend', 'unsuspend'),
            'Terminate' => array('Terminate', 'terminate'), 'testConnection' => array('testConnection', 'test-connection'), 'getSynchInfo' => array('getSynchInfo', 'sync'),
        );
    }

    /**
     * Issue 9, break 4: a disabled proc_open is a message naming disable_functions, for every
     * action, not a fatal.
     *
     * @dataProvider actions
     */
    public function testADisabledProcOpenIsAClearMessageInEveryAction($method, $operation)
    {
        $host = $this->fakeHost('report', self::report($operation, array()));
        $host->checkEnvironmentWith(function ($function) {
            return !in_array($function, array('proc_open', 'proc_get_status'), true);
        });
        $module = $this->module($host);
        $this->assertFalse($module->$method());
        $error = $module->recordedErrors()[0];
        $this->assertStringContainsString('proc_open, proc_get_status are disabled (php.ini disable_functions)', $error);
        $this->assertStringContainsString('Remove proc_open, proc_get_status, proc_terminate, proc_close, stream_select, stream_set_blocking from disable_functions', $error);
        $this->assertStringContainsString('disable_functions', HbLog::text());
        $this->assertFileDoesNotExist($this->dir . '/args-host.txt', 'the host was never started');
    }

    public function testAnOldPhpIsAClearMessage()
    {
        $host = $this->fakeHost('report', self::report('suspend', array()));
        $host->checkEnvironmentWith(null, 70333);
        $module = $this->module($host);
        $this->assertFalse($module->Suspend());
        $this->assertStringContainsString('needs PHP 7.4 or newer', $module->recordedErrors()[0]);
        $this->assertStringContainsString('this PHP is 7.3', $module->recordedErrors()[0]);
        $this->assertNull(cloudpe_host::environmentProblem(), 'this PHP can run the host');
        $this->assertTrue(cloudpe_host::functionAvailable('proc_open'));
        $this->assertFalse(cloudpe_host::functionAvailable('no_such_function_at_all'));
    }

    /** @dataProvider actions */
    public function testNoThrowableEscapesAnAction($method)
    {
        $module = $this->module($this->fakeHost());
        $module->useHostFactory(function () {
            throw new RuntimeException('surprise with ' . FakeHostTestCase::TOKEN);
        });
        $reflection = new ReflectionProperty('cloudpe', 'host');
        $reflection->setAccessible(true);
        $reflection->setValue($module, null);
        $this->assertFalse($module->$method());
        $this->assertStringContainsString('stopped by an unexpected error: RuntimeException: surprise with [REDACTED]', $module->recordedErrors()[0]);
        $this->assertNoToken($module);
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

    public function testCreateFailsWhenTheClientHasNoCloudpeId()
    {
        $module = $this->module($this->fakeHost('report', self::report('create', array('error' => array(
            'kind' => 'configuration', 'message' => 'client #11 has no `cloudpeid` custom field value', 'code' => null,
        ))), 1));
        ApiWrapper::$clients['11'] = array('firstname' => 'Ann');
        $this->assertFalse($module->Create());
        $this->assertSame(array(), $this->sentRequest()['account']['custom_fields']);
        $this->assertStringContainsString('client #11', $module->recordedErrors()[0]);
    }

    /** Issue 25 item 8: a compile cache another user owns (cron as root, web as www-data) is named. */
    public function testACacheOwnedByAnotherUserIsAWarning()
    {
        $cache = $this->dir . '/cache';
        $this->assertNull(cloudpe::cacheOwnerWarning($cache, fileowner($this->dir)), 'nothing yet');
        mkdir($cache, 0700);
        $this->assertNull(cloudpe::cacheOwnerWarning($cache, fileowner($cache)), 'ours');
        $other = fileowner($cache) === 3999999 ? 3999998 : 3999999; // a user with no passwd entry
        $warning = cloudpe::cacheOwnerWarning($cache, $other);
        $this->assertStringStartsWith("the compiled-component cache {$cache} belongs to ", $warning);
        $this->assertStringContainsString("not to uid {$other}, the user this PHP runs as: the host does not use a cache another user owns, so every action here compiles the component again (slower)", $warning);
        $this->assertStringContainsString('Run HostBill\'s cron as the web server\'s user', $warning);
        touch($cache . '.key');
        rmdir($cache);
        $this->assertStringStartsWith("the compiled-component cache {$cache}.key belongs to ", cloudpe::cacheOwnerWarning($cache, $other), 'its key too');
    }

    /** Issue 25 item 8: a client HostBill does not have is said to be missing. */
    public function testAMissingClientIsSaidToBeMissing()
    {
        $module = $this->module($this->fakeHost('report', self::report('create', array('error' => array(
            'kind' => 'configuration', 'message' => 'client #11 has no `cloudpeid` custom field value: set it to the client\'s CloudPe user id', 'code' => null,
        ))), 1));
        unset(ApiWrapper::$clients['11']);
        $this->assertFalse($module->Create());
        $this->assertSame('CloudPe module: account #101 belongs to client #11, which HostBill does not have (getClientDetails: Client not found): the client is missing, so there is no CloudPe user id to read; give the account an existing client', $module->recordedErrors()[0]);
        $this->assertStringNotContainsString('custom field value', implode("\n", $module->recordedErrors()) . HBRegistry::$db->accountLog('101')[0]['error']);
        $this->assertNull($module->missingClient('12'), 'a client never read is not said to be missing');
    }

    /** @dataProvider spellings */
    public function testBothConnectSpellingsAreAccepted($connect, $host, $secure)
    {
        $module = $this->module($this->fakeHost('report', self::report('test-connection', array('checks' => array()))));
        $module->connect($connect + array('id' => '4', 'status_url' => 'https://x.example', 'field2' => self::TOKEN));
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

    public function testTheBundledHostComponentAndCacheAreUsed()
    {
        $module = new cloudpe();
        $module->connect(self::appRow());
        $module->setAccount(array('id' => '101', 'client_id' => '11', 'status' => 'Active'));
        $host = $module->host(120);
        $dir = realpath(__DIR__ . '/../includes/modules/Hosting/cloudpe');
        // Inside the module's own folder, never a shared temporary one (the check must not depend
        // on where the repository itself lies, which may be under /tmp).
        $this->assertSame($dir . '/cache', cloudpe::cacheDir());
        $this->assertFalse($module->Suspend(), 'no binary in the source tree');
        $this->assertStringContainsString($dir . '/bin/hostbill-module-host does not exist', $module->recordedErrors()[0]);
        $this->assertSame(108.0, $host->deadline());
        $this->assertSame($dir . '/keys', cloudpe::keysDir());
        $this->assertSame($dir . '/keys', $host->trustedKeys(), 'the bundle\'s keys folder (keys/vendor.pub) is what the host trusts');
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
            array('level' => 'error', 'source' => 'module', 'message' => 'json ' . json_encode(self::TOKEN)),
        ));
        $module = $this->module($this->fakeHost('report', $leaky, 1));
        $this->assertFalse($module->Suspend());
        $this->echo = substr(json_encode(self::TOKEN), 1, -1);
        $module->useHost($this->fakeHost('garbage'));
        $this->assertFalse($module->Suspend());
        $this->assertStringContainsString('[REDACTED]', $module->recordedErrors()[1]);
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

    public function testGetSynchInfoRecordsAChangeAndReturnsSuspendedLikeRealModules()
    {
        $change = array('account_id' => '101', 'decision' => 'change', 'from' => 'Active', 'to' => 'Suspended', 'facts' => array());
        $module = $this->module($this->fakeHost('report', self::report('sync', array('decisions' => array($change), 'dry_run' => false))));
        $this->assertSame(array('suspended' => 1), $module->getSynchInfo());
        $this->assertSame(array(array('id' => '101', 'status' => 'Suspended')), ApiWrapper::$edits);
        $this->assertSame(array('Active'), array_column($this->sentRequest()['accounts'], 'status'));

        $unchanged = array('account_id' => '101', 'decision' => 'unchanged', 'facts' => array());
        $module = $this->module($this->fakeHost('report', self::report('sync', array('decisions' => array($unchanged)))));
        ApiWrapper::$edits = array();
        $this->assertSame(array('suspended' => 0), $module->getSynchInfo());
        $this->assertSame(array(), ApiWrapper::$edits, 'nothing written when nothing changed');

        $terminated = array('account_id' => '101', 'decision' => 'change', 'from' => 'Active', 'to' => 'Terminated', 'facts' => array());
        $module = $this->module($this->fakeHost('report', self::report('sync', array('decisions' => array($terminated)))));
        $info = $module->getSynchInfo();
        $this->assertArrayNotHasKey('suspended', $info, 'a terminated account is not "unsuspended"');
        $this->assertNotEmpty($info);

        $error = array('account_id' => '101', 'decision' => 'error', 'error' => array('kind' => 'not-found', 'message' => 'no user 1234'));
        $module = $this->module($this->fakeHost('report', self::report('sync', array('decisions' => array($error)))));
        ApiWrapper::$edits = array();
        $this->assertFalse($module->getSynchInfo());
        $this->assertSame(array('no user 1234'), $module->recordedErrors());
        $this->assertSame(array(), ApiWrapper::$edits);
    }

    public function testGetSynchInfoChecksThatHostBillRecordedTheStatus()
    {
        ApiWrapper::$refuse['101'] = 'Account is locked';
        $change = array('account_id' => '101', 'decision' => 'change', 'from' => 'Active', 'to' => 'Suspended', 'facts' => array());
        $module = $this->module($this->fakeHost('report', self::report('sync', array('decisions' => array($change)))));
        $this->assertFalse($module->getSynchInfo());
        $this->assertSame(array('HostBill did not record status Suspended for account #101: Account is locked'), $module->recordedErrors());
        $this->assertSame(array(), ApiWrapper::$edits);
    }

    /** The host's `info` for the real CloudPe component (shape of hostbill-module-host 0.x `info`). */
    public static function infoReport($signature = null, $previous = null)
    {
        $field = function ($field, $label, $secret = false) {
            return array('field' => $field, 'label' => $label, 'required' => true, 'secret' => $secret, 'description' => '');
        };
        return self::report('info', array(
            'module' => array('name' => 'CloudPe', 'version' => '0.1.0'),
            'info' => array(
                'name' => 'CloudPe', 'version' => '0.1.0', 'endpoint_field' => 'status_url',
                'app_fields' => array($field('status_url', 'Host URL'), $field('field1', 'App Id'), $field('field2', 'Session', true), $field('custom.Client field code', 'Client field code'), $field('custom.On terminate', 'On terminate')),
                'component' => array(
                    'file' => '/srv/cloudpe.wasm',
                    'signature' => $signature ?: array('verified' => true, 'key_id' => '5528843619268ca7'),
                    'metadata' => array('name' => null, 'version' => null),
                    'previous' => $previous,
                ),
                'permissions' => array(
                    'network' => "only the origin (scheme, host, port) of the App's status_url field, through wasi:http",
                    'reads' => array('status_url', 'field1', 'field2', 'custom.Client field code', 'custom.On terminate'),
                    'secret' => array('field2'),
                    'limits' => array('memory' => '128 MiB', 'deadline' => '108 s', 'response' => '64 MiB', 'connections' => 16, 'host_resources' => 2048, 'request' => '64 MiB', 'report' => '48 MiB'),
                ),
            ),
        ));
    }

    /** Issue 12 §3: after a successful Test Connection, the App page shows what the module may do. */
    public function testTestConnectionShowsThePermissionsSummary()
    {
        $checks = array(array('name' => 'API reachable', 'passed' => true, 'detail' => 'ok'));
        $report = self::report('test-connection', array('checks' => $checks, 'endpoint' => 'https://api.cloudpe.example.com:443'));
        $module = $this->module($this->fakeHost('report', $report, 0, 10, 'host', self::infoReport()));
        $this->assertTrue($module->testConnection(), implode('; ', $module->recordedErrors()));
        $infos = $module->recordedInfos();
        $this->assertCount(2, $infos);
        $this->assertSame(
            'Module CloudPe 0.1.0 (signed by key 5528843619268ca7): may reach only https://api.cloudpe.example.com:443 (the Host URL\'s origin); '
            . 'reads Host URL, App Id, Session (secret), Client field code, On terminate; limits: memory 128 MiB, deadline 108 s, responses 64 MiB, 16 connections',
            $infos[1]
        );
        $info = file($this->dir . '/args-host.txt.info', FILE_IGNORE_NEW_LINES);
        $this->assertSame(array('info', '--component', $this->dir . '/module.wasm', '--trusted-keys', $this->dir . '/keys', '--deadline-secs', '5', '--max-report-mib', '63'), $info, 'info ran after the connection test, with the same trust');
        $this->assertSame('test-connection', $this->sentArgs()[0], 'the action\'s own arguments are kept');
        $this->assertNoToken($module);
    }

    public function testTheSummarySaysWhenTheComponentIsNotVerifiedOrARollbackIsKept()
    {
        $unverified = self::infoReport(array('verified' => false, 'why' => 'it is not signed (no signature file)', 'allowed_by' => '--allow-unsigned'), array('file' => '/srv/cloudpe.wasm.previous', 'metadata' => array('version' => '0.0.9')));
        $report = self::report('test-connection', array('checks' => array(), 'endpoint' => 'http://sim.example:8080'));
        $module = $this->module($this->fakeHost('report', $report, 0, 10, 'host', $unverified), array('status_url' => 'HTTP://Sim.Example:8080/jel'));
        $this->assertTrue($module->testConnection());
        $line = $module->recordedInfos()[1];
        $this->assertStringStartsWith('Module CloudPe 0.1.0 (NOT verified: it is not signed (no signature file)): may reach only http://sim.example:8080 (the Host URL\'s origin)', $line);
        $this->assertStringEndsWith('; the previous component (0.0.9) is kept for a rollback', $line);
    }

    /**
     * Issue 26 §3: the Host URL is read by the host alone. For every URL of the shared table
     * (the host's unit test reads it too), the summary names the origin the host's report gives,
     * never one PHP derived from the App; without one it names the field.
     */
    public function testTheSummaryNamesTheOriginTheHostRead()
    {
        $table = json_decode(file_get_contents(__DIR__ . '/fixtures/endpoint-urls.json'), true);
        $this->assertGreaterThanOrEqual(10, count($table['valid']));
        foreach ($table['valid'] as $case) {
            $line = cloudpe::describeInfo(self::infoReport()['info'], $case['origin']);
            $this->assertStringContainsString("may reach only {$case['origin']} (the Host URL's origin)", $line, $case['url']);
        }
        foreach (array(null, '') as $none) {
            $this->assertStringContainsString('may reach only the origin of the Host URL;', cloudpe::describeInfo(self::infoReport()['info'], $none));
        }
        $report = self::report('test-connection', array('checks' => array()));
        $module = $this->module($this->fakeHost('report', $report, 0, 10, 'host', self::infoReport()), array('status_url' => 'https://api.cloudpe.example.com'));
        $this->assertTrue($module->testConnection());
        $this->assertStringContainsString('may reach only the origin of the Host URL;', $module->recordedInfos()[1], 'no endpoint in the report: PHP does not parse the URL itself');
    }

    public function testAFailedInfoLeavesTheConnectionTestAlone()
    {
        $failed = self::report('info', array('error' => array('kind' => 'module-trapped', 'message' => 'info trapped')));
        $module = $this->module($this->fakeHost('report', self::report('test-connection', array('checks' => array())), 0, 10, 'host', $failed));
        $this->assertTrue($module->testConnection());
        $this->assertCount(1, $module->recordedInfos());
        $this->assertSame(array(), $module->recordedErrors());
        $this->assertStringContainsString('error CloudPe Module: info: info trapped', HbLog::text());
    }

    /**
     * Issue 12 §1: a component refused for its signature fails every action with what to do; the
     * module never throws.
     *
     * @dataProvider actions
     */
    public function testASignatureRefusalTellsTheAdminWhatToDo($method, $operation)
    {
        $component = $this->dir . '/module.wasm';
        file_put_contents($component . '.previous', 'previous component');
        $refused = self::report($operation, array(
            'error' => array('kind' => 'module-refused', 'message' => "{$component} is refused: it was modified after it was signed by key 5528843619268ca7 (the signature does not match its bytes)", 'code' => null),
            'meter' => array('wall_ms' => 3, 'requests' => 0, 'bytes_received' => 0, 'peak_memory_bytes' => 0),
        ));
        $module = $this->module($this->fakeHost('report', $refused, 3));
        $this->assertFalse($module->$method());
        $this->assertSame(array(
            "CloudPe module: {$component} is refused: it was modified after it was signed by key 5528843619268ca7 (the signature does not match its bytes). "
            . "Install the vendor's signed cloudpe.wasm together with its cloudpe.wasm.sig (both from the same release bundle) in {$this->dir}/, "
            . "or switch back to the previous component, as the web server's user: " . __DIR__ . "/fixtures/fake-host --component {$component} --trusted-keys {$this->dir}/keys rollback (README: Upgrading the module).",
        ), $module->recordedErrors());
        $this->assertStringContainsString("{$operation} failed (module-refused): {$component} is refused: it was modified after it was signed", HbLog::text());
    }

    /** Issue 12 §5: each action's log line carries the meter; a failure names the limit that stopped it. */
    public function testTheLogLinesCarryTheMeterAndTheLimit()
    {
        $meter = array('wall_ms' => 412, 'requests' => 2, 'bytes_received' => 900, 'peak_memory_bytes' => 1114112);
        $module = $this->module($this->fakeHost('report', self::report('unsuspend', array('outcome' => array('message' => 'ok'), 'meter' => $meter))));
        $this->assertTrue($module->Unsuspend());
        $this->assertSame(array('system', 'unsuspend of account #101: ok; 2 requests in 0.4 s', 'CloudPe Module'), end(HbLog::$lines));

        HbLog::$lines = array();
        $stopped = self::report('suspend', array(
            'error' => array('kind' => 'module-trapped', 'message' => 'the module did not finish within 108 s', 'code' => null, 'limit' => array('name' => 'deadline', 'value' => '108 s')),
            'meter' => array('wall_ms' => 108003, 'requests' => 5, 'bytes_received' => 0, 'peak_memory_bytes' => 2097152),
        ));
        $module = $this->module($this->fakeHost('report', $stopped, 3));
        $this->assertFalse($module->Suspend());
        $this->assertSame(array(array('error', 'suspend failed (module-trapped): the module did not finish within 108 s [stopped by the deadline limit (108 s); 5 requests in 108.0 s]', 'CloudPe Module')), HbLog::$lines);
        $this->assertSame(array('the module did not finish within 108 s'), $module->recordedErrors());
    }

    /** Issue 11 §6: a run over plain http warns the admin beside the action's message, and the log. */
    public function testAPlainHttpWarningReachesTheAdminAndTheLog()
    {
        $warning = 'plain http: 1 requests and the App\'s "Session" crossed the network to http://10.0.0.5:80 unencrypted; use an https:// URL';
        $module = $this->module($this->fakeHost('report', self::report('suspend', array('outcome' => array('message' => 'suspended'), 'warnings' => array($warning, 42)))));
        $this->assertTrue($module->Suspend());
        $this->assertSame(array('suspended', "Warning: {$warning}"), $module->recordedInfos());
        $this->assertContains(array('error', "suspend: warning: {$warning}", 'CloudPe Module'), HbLog::$lines);

        // A failed action shows it too; a report without warnings shows none.
        HbLog::$lines = array();
        $failed = self::report('unsuspend', array('error' => array('kind' => 'transport', 'message' => 'HTTP 500', 'code' => null), 'warnings' => array($warning)));
        $module = $this->module($this->fakeHost('report', $failed, 1));
        $this->assertFalse($module->Unsuspend());
        $this->assertSame(array("Warning: {$warning}"), $module->recordedInfos());
        $this->assertSame(array('HTTP 500'), $module->recordedErrors());
        $module = $this->module($this->fakeHost('report', self::report('suspend', array('outcome' => array('message' => 'suspended')))));
        $this->assertTrue($module->Suspend());
        $this->assertSame(array('suspended'), $module->recordedInfos());
    }
}
