<?php

/**
 * Contract 2.4.0 on HostBill's side (docs/lifecycle.md): Create that links (and provisions),
 * ChangePackage, the "CloudPe group" option's choices and Test Connection's capability lines,
 * against fake hosts answering the host's JSON, HostBill's doubles and its real tables.
 */
class LifecycleTest extends FakeHostTestCase
{
    /** A module on account #101 of client #11 (ann@x.io, no CloudPe id yet) answering `$report`. */
    private function unlinked($report, $exit = 0, array $custom = array())
    {
        $module = $this->module($this->fakeHost('report', $report, $exit), array(), $custom);
        ApiWrapper::$clients['11'] = array('firstname' => 'Ann', 'email' => 'ann@x.io', 'cloudpeid' => '');
        return $module;
    }

    private static function created($uid, $source, $message = null, array $facts = array())
    {
        return self::report('create', array(
            'outcome' => array('message' => $message ?: "CloudPe user {$uid} found by the client's email", 'facts' => $facts, 'changed_remote' => $source === 'provisioned'),
            'link' => array('remote_id' => $uid, 'source' => $source),
        ));
    }

    /** Everything the module wrote anywhere an admin or a log reader can see. */
    private function everything(cloudpe $module)
    {
        return HbLog::text() . "\n" . implode("\n", $module->recordedErrors()) . "\n" . implode("\n", $module->recordedInfos()) . "\n" . json_encode(HBRegistry::$db->accountLog('101'));
    }

    public function testCreateLinksByEmailStoresTheUidAndSetsTheEmptyClientField()
    {
        $module = $this->unlinked(self::created(1005, 'by-email'));
        $module->loadProductOptions(array('CloudPe group' => ' premium '));
        $this->assertTrue($module->Create(), implode('; ', $module->recordedErrors()));

        $sent = $this->sentRequest();
        $this->assertSame('create', $this->sentArgs()[0]);
        $this->assertSame('ann@x.io', $sent['client_email'], 'the client\'s email goes with the account');
        $this->assertSame(array('CloudPe group' => 'premium'), $sent['product'], 'the product\'s options by name');
        $this->assertSame(array(), $sent['account']['custom_fields'], 'the client had no CloudPe id');

        $this->assertSame('1005', $module->savedDetails()['cloudpe_uid'], 'the uid is saved with the account');
        $this->assertSame('1005', ApiWrapper::$clients['11']['cloudpeid'], 'the empty client field is set');
        $this->assertSame(array('cloudpeid' => '1005'), $module->clientFields('11'), 'and the module\'s next action reads it');
        $this->assertSame(array(array('id' => '11', 'cloudpeid' => '1005')), ApiWrapper::calls('setClientDetails'));
        $this->assertSame(array(), $module->recordedErrors());
        $this->assertContains("CloudPe user 1005 linked to account #101 (by email ann@x.io); client #11's field cloudpeid set to 1005", $module->recordedInfos());

        $log = HBRegistry::$db->accountLog('101');
        $this->assertCount(1, $log);
        $this->assertSame('CloudPe: linked to CloudPe user 1005 (by email ann@x.io)', $log[0]['action']);
        $this->assertSame(array('CloudPeLink', '1', 'ann.admin'), array($log[0]['event'], $log[0]['result'], $log[0]['admin_login']));
        $this->assertSame(array(
            array('name' => 'CloudPe user id', 'from' => '', 'to' => '1005'),
            array('name' => 'client field cloudpeid', 'from' => '', 'to' => '1005'),
        ), $log[0]['change']['data']);
        $this->assertNoToken($module);
    }

    /** The email in the messages and the account's log is HTML-escaped, and the secrets scrubbed. */
    public function testTheLinkMessagesEscapeTheEmail()
    {
        $module = $this->unlinked(self::created(1005, 'by-email'));
        ApiWrapper::$clients['11']['email'] = '"><img src=x onerror=alert(1)>@x.io';
        $this->assertTrue($module->Create(), implode('; ', $module->recordedErrors()));
        $escaped = '&quot;&gt;&lt;img src=x onerror=alert(1)&gt;@x.io';
        $this->assertSame("CloudPe: linked to CloudPe user 1005 (by email {$escaped})", HBRegistry::$db->accountLog('101')[0]['action']);
        $this->assertStringContainsString("(by email {$escaped})", implode("\n", $module->recordedInfos()));
        $this->assertStringNotContainsString('<img', $this->everything($module));
    }

    /** The client's id field got a value while Create ran: it is kept, the difference said. */
    public function testCreateNeverOverwritesAClientFieldSetMeanwhile()
    {
        $module = $this->unlinked(self::created(1005, 'by-email'));
        $host = $this->fakeHost('report', self::created(1005, 'by-email'));
        $module->useHostFactory(function () use ($host) {
            ApiWrapper::$clients['11']['cloudpeid'] = '2222'; // staff set it while the host ran
            return $host;
        });
        $reflection = new ReflectionProperty('cloudpe', 'host');
        $reflection->setAccessible(true);
        $reflection->setValue($module, null);

        $this->assertTrue($module->Create(), implode('; ', $module->recordedErrors()));
        $this->assertSame('2222', ApiWrapper::$clients['11']['cloudpeid'], 'never overwritten');
        $this->assertSame(0, ApiWrapper::count('setClientDetails'));
        $this->assertSame('1005', $module->savedDetails()['cloudpe_uid']);
        $this->assertStringContainsString("Warning: CloudPe user 1005 linked to account #101 (by email ann@x.io), but client #11's field cloudpeid now holds 2222, not 1005: left as it is", implode("\n", $module->recordedInfos()));
        $this->assertStringContainsString("error CloudPe Module: create of account #101: linked to CloudPe user 1005 (by email ann@x.io), but client #11's field cloudpeid now holds 2222, not 1005: left as it is", HbLog::text());
        $log = HBRegistry::$db->accountLog('101');
        $this->assertSame(array('name' => 'client field cloudpeid', 'from' => '2222', 'to' => '2222 (kept)'), $log[0]['change']['data'][1]);
    }

    public function testCreateOfAnAlreadyLinkedClientWritesNoField()
    {
        $module = $this->module($this->fakeHost('report', self::created(1234, 'existing', 'CloudPe user 1234 exists')));
        ApiWrapper::$clients['11']['email'] = 'ann@x.io';
        $this->assertTrue($module->Create());
        $this->assertSame(array('cloudpeid' => '1234'), $this->sentRequest()['account']['custom_fields']);
        $this->assertSame(0, ApiWrapper::count('setClientDetails'));
        $this->assertSame('1234', $module->savedDetails()['cloudpe_uid']);
        $this->assertSame('CloudPe: linked to CloudPe user 1234 (existing)', HBRegistry::$db->accountLog('101')[0]['action']);
        $this->assertSame(array('CloudPe user 1234 exists', 'CloudPe user 1234 linked to account #101 (existing)'), $module->recordedInfos());
    }

    /** @dataProvider noSingleMatch */
    public function testCreateWithoutExactlyOneMatchLinksNothing($message)
    {
        $module = $this->unlinked(self::report('create', array('error' => array('kind' => 'configuration', 'message' => $message, 'code' => null))), 1);
        $this->assertFalse($module->Create());
        $this->assertSame(array(cloudpe_text::html($message)), $module->recordedErrors(), 'the module\'s message, escaped once');
        $this->assertSame('', $module->savedDetails()['cloudpe_uid'], 'nothing stored');
        $this->assertSame('', ApiWrapper::$clients['11']['cloudpeid']);
        $this->assertSame(0, ApiWrapper::count('setClientDetails'));
        $log = HBRegistry::$db->accountLog('101');
        $this->assertCount(1, $log);
        $this->assertSame(array('CloudPeCreate', '0', cloudpe_text::html($message)), array($log[0]['event'], $log[0]['result'], $log[0]['error']));
    }

    public function noSingleMatch()
    {
        return array(
            'none' => array('no CloudPe user has the email ann@x.io (client #11): create one on CloudPe, or set the client\'s cloudpeid field, then run Create again'),
            'several' => array('2 CloudPe users have the email ann@x.io (uids 1005, 1006): set the client\'s cloudpeid field to the right one, then run Create again'),
        );
    }

    /** Provisioning: stored as a link by email is; the generated password reaches nothing PHP writes. */
    public function testAProvisionedUserIsStoredTheSameAndNoPasswordIsSeen()
    {
        $report = self::created(1077, 'provisioned', 'CloudPe user 1077 created for ann@x.io (activated, group premium); CloudPe mailed the credentials', array('cloudpe-uid' => '1077', 'cloudpe-email' => 'ann@x.io', 'cloudpe-group' => 'premium'));
        $report['calls'] = array(array('method' => 'system/admin/rest/createaccount', 'params' => array('email' => 'ann@x.io', 'password' => '********'), 'http_status' => 200, 'result' => 0, 'reply' => '{"result":0}'));
        $module = $this->unlinked($report, 0, array('On create' => 'provision', 'Call log' => 'on'));
        $module->loadProductOptions(array('CloudPe group' => 'premium'));
        $this->assertTrue($module->Create(), implode('; ', $module->recordedErrors()));
        $this->assertSame('provision', $this->sentRequest()['app']['custom']['On create']);
        $saved = $module->savedDetails();
        $this->assertSame(array('1077', 'ann@x.io', 'premium'), array($saved['cloudpe_uid'], $saved['cloudpe_email'], $saved['cloudpe_group']));
        $this->assertSame('1077', ApiWrapper::$clients['11']['cloudpeid']);
        $this->assertSame('CloudPe: linked to CloudPe user 1077 (provisioned)', HBRegistry::$db->accountLog('101')[0]['action']);
        $everything = $this->everything($module);
        $this->assertStringContainsString('call: system/admin/rest/createaccount {"email":"ann@x.io","password":"********"}', $everything, 'the call log line is there, masked');
        $this->assertSame(1, preg_match_all('/passw/i', $everything), 'the only "password" PHP wrote is the masked parameter name of the call log');
        $this->assertArrayNotHasKey('password', $this->sentRequest(), 'PHP sends no password either');
    }

    /** @dataProvider onCreateValues */
    public function testTheOnCreateSettingGoesToTheComponentAsSet($custom, $expected)
    {
        $module = $this->unlinked(self::created(1005, 'by-email'), 0, $custom);
        $this->assertTrue($module->Create());
        $app = $this->sentRequest()['app']['custom'];
        if ($expected === null) {
            $this->assertArrayNotHasKey('On create', $app, 'unset: the component\'s default (link) applies');
        } else {
            $this->assertSame($expected, $app['On create']);
        }
    }

    public function onCreateValues()
    {
        return array(
            'link' => array(array('On create' => 'link'), 'link'),
            'provision' => array(array('On create' => ' provision '), 'provision'),
            'a value the component refuses by name' => array(array('On create' => 'create'), 'create'),
            'unset' => array(array(), null),
        );
    }

    public function testCreateFailsWhenHostBillDoesNotStoreTheClientField()
    {
        ApiWrapper::$refuseClientEdits = 'Field is locked';
        $module = $this->unlinked(self::created(1005, 'by-email'));
        $this->assertFalse($module->Create());
        $this->assertSame(
            "CloudPe module: account #101 is linked to CloudPe user 1005 (by email ann@x.io), but HostBill did not store 1005 in client #11's field `cloudpeid`: setClientDetails refused it (Field is locked). Set the field to 1005 on the client's profile, or run Create again (it finds the same user)",
            $module->recordedErrors()[0]
        );
        $log = HBRegistry::$db->accountLog('101');
        $this->assertSame(array('CloudPe: linked to CloudPe user 1005 (by email ann@x.io); client field cloudpeid NOT set', '0'), array($log[0]['action'], $log[0]['result']));

        // A field code HostBill has no field for: said as such, after reading it back.
        ApiWrapper::$refuseClientEdits = null;
        HBRegistry::$db->exec('DELETE FROM hb_account_logs');
        $module = $this->unlinked(self::created(1005, 'by-email'), 0, array('Client field code' => 'nosuch'));
        $this->assertFalse($module->Create());
        $this->assertStringContainsString("setClientDetails answered success, but the client has no field with code `nosuch`: create a client custom field with that code, or set the App's \"Client field code\" to the field's code", $module->recordedErrors()[0]);
    }

    /** @dataProvider badLinks */
    public function testALinkThatIsNotOneIsAnError($link)
    {
        $report = self::created(1005, 'by-email');
        $report['link'] = $link;
        $module = $this->unlinked($report);
        $this->assertFalse($module->Create());
        $this->assertStringContainsString('the module host reported a link that is not one', $module->recordedErrors()[0]);
        $this->assertSame('', $module->savedDetails()['cloudpe_uid']);
        $this->assertSame(0, ApiWrapper::count('setClientDetails'));
    }

    public function badLinks()
    {
        return array(
            'uid 0' => array(array('remote_id' => 0, 'source' => 'by-email')),
            'negative' => array(array('remote_id' => -3, 'source' => 'by-email')),
            'unknown source' => array(array('remote_id' => 5, 'source' => 'guessed')),
            'not an object' => array('1005'),
        );
    }

    public function testAnOlderComponentsCreateHasNoLinkAndStoresNothing()
    {
        $module = $this->module($this->fakeHost('report', self::report('create', array('outcome' => array('message' => 'CloudPe user 1234 exists')))));
        $this->assertTrue($module->Create());
        $this->assertSame('', $module->savedDetails()['cloudpe_uid']);
        $this->assertSame(array(), HBRegistry::$db->accountLog('101'));
    }

    /**
     * Automation's Create fails on a passing fault and is queued; the cron's retry sends the
     * client's email too, and HostBill's own accountCreate, run by the retry, stores its link.
     */
    public function testARetriedCreateStoresItsLinkThroughHostBillsOwnCreate()
    {
        HbAdmin::$logged = HbAdmin::NONE;
        self::appRow();
        ApiWrapper::$accounts[] = array('id' => '101', 'client_id' => '11', 'server_id' => '4', 'status' => 'Pending', 'product_id' => '3');
        ApiWrapper::$clients['11'] = array('firstname' => 'Ann', 'email' => 'ann@x.io', 'cloudpeid' => '');
        // The product's module options as HostBill stores them (hb_products_modules): the cron's
        // retry has only the account row, so it reads them there.
        HBRegistry::$db->insertRow('hb_modules_configuration', CronTest::moduleRow('2.5.0'));
        HBRegistry::$db->insertRow('hb_products_modules', array('product_id' => '3', 'module' => '7', 'main' => '1', 'server' => '4', 'options' => serialize(array(cloudpe::OPTION_GROUP => 'premium'))));
        $now = 1796000000;
        $queue = new cloudpe_retries(null, function () use (&$now) {
            return $now;
        });
        $answers = array(
            array(self::report('create', array('error' => array('kind' => 'transport', 'message' => 'could not reach CloudPe: connection refused', 'code' => null))), 1),
            array(self::created(1005, 'by-email'), 0),
        );
        $runs = 0;
        $module = new cloudpe();
        $module->useHostFactory(function ($connection, $timeout) use (&$answers, &$runs) {
            $runs++;
            list($report, $exit) = array_shift($answers);
            return $this->fakeHost('report', $report, $exit, $timeout, "run{$runs}");
        });
        $module->useRetries($queue);
        $module->connect((new HbServersModel())->getServerDetails('4'));
        $module->setAccount(ApiWrapper::$accounts[0]);
        $this->assertFalse($module->Create());
        $this->assertSame('create', $queue->find('101')['operation'], 'queued for the cron');

        $now += 3600;
        $output = cloudpe_retries::everyRun($module, null, null, $queue);
        $this->assertSame('CloudPe retries: account #101 create: succeeded on attempt 2; HostBill\'s accountCreate recorded it (status Pending -> Active)', $output);
        $this->assertSame('ann@x.io', $this->sentRequest('run2')['client_email'], 'the retry sends what Create sends');
        $this->assertSame(array(cloudpe::OPTION_GROUP => 'premium'), $this->sentRequest('run2')['product'], 'and the product\'s group, read from the product');
        $this->assertSame('1005', ApiWrapper::$savedDetails['101']['cloudpe_uid'], 'HostBill\'s Create, run by the retry, stored the link');
        $this->assertSame('1005', ApiWrapper::$clients['11']['cloudpeid']);
        $this->assertSame(2, $runs, 'HostBill\'s own Create did not call CloudPe again');
        $actions = array_column(HBRegistry::$db->accountLog('101'), 'action');
        $this->assertContains('CloudPe: linked to CloudPe user 1005 (by email ann@x.io)', $actions);
    }

    public function testChangePackageSendsTheNewPackagesGroupAndLogsTheChange()
    {
        $report = self::report('change-package', array('outcome' => array(
            'message' => 'CloudPe user 1234 moved from group premium to gold (read back: gold)',
            'facts' => array('cloudpe-uid' => '1234', 'cloudpe-group' => 'gold', 'previous-group' => 'premium'),
            'changed_remote' => true,
        )));
        $module = $this->module($this->fakeHost('report', $report));
        $module->loadProductOptions(array('CloudPe group' => 'gold'));
        ApiWrapper::$clients['11']['email'] = 'ann@x.io';
        $this->assertTrue($module->ChangePackage(), implode('; ', $module->recordedErrors()));
        $this->assertSame('change-package', $this->sentArgs()[0]);
        $sent = $this->sentRequest();
        $this->assertSame(array('CloudPe group' => 'gold'), $sent['product']);
        $this->assertSame(array('cloudpeid' => '1234'), $sent['account']['custom_fields']);
        $this->assertSame(array('CloudPe user 1234 moved from group premium to gold (read back: gold)'), $module->recordedInfos());
        $this->assertSame('gold', $module->savedDetails()['cloudpe_group']);
        $log = HBRegistry::$db->accountLog('101');
        $this->assertSame(array('CloudPe: package changed', 'CloudPeChangePackage', '1'), array($log[0]['action'], $log[0]['event'], $log[0]['result']));
        $this->assertSame(array(
            array('name' => 'product CloudPe group', 'from' => '', 'to' => 'gold'),
            array('name' => 'cloudpe-uid', 'from' => '', 'to' => '1234'),
            array('name' => 'cloudpe-group', 'from' => '', 'to' => 'gold'),
            array('name' => 'previous-group', 'from' => '', 'to' => 'premium'),
        ), $log[0]['change']['data']);
    }

    public function testAFailedChangePackageIsAnErrorAndALogRow()
    {
        $message = 'CloudPe refused billing/account/rest/setgroup (8202, permission denied): add billing.Account.SetGroup to the token\'s API list';
        $module = $this->module($this->fakeHost('report', self::report('change-package', array('error' => array('kind' => 'remote-api', 'message' => $message, 'code' => 8202))), 1));
        $module->loadProductOptions(array('CloudPe group' => 'gold'));
        $this->assertFalse($module->ChangePackage());
        $this->assertSame(array(cloudpe_text::html($message)), $module->recordedErrors());
        $log = HBRegistry::$db->accountLog('101');
        $this->assertSame(array('CloudPeChangePackage', '0', cloudpe_text::html($message)), array($log[0]['event'], $log[0]['result'], $log[0]['error']));
        $this->assertSame(0, count((new cloudpe_retries())->due()), 'a package change is not queued for a retry');
    }

    public function testChangePackageWithAnOlderComponentSaysToInstallANewerOne()
    {
        $module = $this->module($this->fakeHost('report', self::report('change-package', array('error' => array('kind' => 'unsupported', 'message' => 'change-package needs a module of contract 2.4.0 or later; this one is 2.3.0', 'code' => null))), 1));
        $this->assertFalse($module->ChangePackage());
        $this->assertSame(
            'CloudPe module: ChangePackage (moving the CloudPe user to the product\'s CloudPe group) needs CloudPe component 2.4.0 or later, and this App\'s component is older (change-package needs a module of contract 2.4.0 or later; this one is 2.3.0): install a newer component (README, "Upgrading the module")',
            $module->recordedErrors()[0]
        );
    }

    public function testGetGroupsListsTheGroupsAsHostBillsLoadableWantsThem()
    {
        $module = new cloudpe();
        $options = $module->declared('options');
        $this->assertSame(array('name' => 'CloudPe group', 'value' => false, 'type' => 'loadable', 'default' => 'getGroups'), array_intersect_key($options['CloudPe group'], array('name' => 1, 'value' => 1, 'type' => 1, 'default' => 1)));
        $this->assertTrue(method_exists($module, $options['CloudPe group']['default']), 'the loadable names a method of the module');

        $report = self::report('option-choices', array('choices' => array(
            array('value' => 'premium', 'label' => 'Premium <b>plan</b>'),
            array('value' => 'bad"><script>', 'label' => 'bad'),
            array('value' => 'trial', 'label' => 'trial'),
        )));
        $module = $this->module($this->fakeHost('report', $report));
        $this->assertSame(array(array('premium', 'Premium &lt;b&gt;plan&lt;/b&gt;'), array('trial', 'trial')), $module->getGroups());
        $this->assertSame('option-choices', $this->sentArgs()[0]);
        $sent = $this->sentRequest();
        $this->assertSame('CloudPe group', $sent['option']);
        $this->assertSame(array('app', 'option'), array_keys($sent));
        $this->assertStringContainsString('CloudPe groups left out of the list, their names have characters a form value may not', HbLog::text());
        $this->assertStringContainsString('bad&quot;&gt;&lt;script&gt;', HbLog::text());
        $this->assertSame(array(), $module->recordedErrors());

        $module = $this->module($this->fakeHost('report', self::report('option-choices', array('choices' => array()))));
        $this->assertSame(array(), $module->getGroups(), 'a platform without groups: an empty list, no error');
    }

    /** @dataProvider groupFailures */
    public function testGetGroupsFailsWithTheReasonAndNeverThrows($mode, $report, $exit, $expected)
    {
        $module = $this->module($this->fakeHost($mode, $report, $exit));
        $this->assertFalse($module->getGroups(), 'false after addError, as the devkit\'s loadable getPlans');
        $this->assertStringContainsString($expected, $module->recordedErrors()[0]);
        $this->assertStringContainsString($expected, HbLog::text() . implode("\n", $module->recordedErrors()));
        $this->assertNoToken($module);
    }

    public function groupFailures()
    {
        $denied = 'CloudPe refused billing/groupquota/rest/getgroups (8202, permission denied): add billing.GroupQuota.GetGroups to the token\'s API list';
        return array(
            'denied' => array('report', self::report('option-choices', array('error' => array('kind' => 'remote-api', 'message' => $denied, 'code' => 8202))), 1, 'add billing.GroupQuota.GetGroups to the token&#039;s API list'),
            'older component' => array('report', self::report('option-choices', array('error' => array('kind' => 'unsupported', 'message' => 'option-choices needs 2.4.0 or later', 'code' => null))), 1, 'The CloudPe group list needs CloudPe component 2.4.0 or later'),
            'host crashed' => array('crash', array(), 0, 'the module host crashed during option-choices'),
        );
    }

    public function testTestConnectionListsEachCapabilityEscaped()
    {
        $report = self::report('test-connection', array(
            'checks' => array(array('name' => 'API reachable', 'passed' => true, 'detail' => 'ok')),
            'endpoint' => 'https://api.cloudpe.example.com:443',
            'capabilities' => array(
                array('name' => 'group list', 'method' => 'billing/groupquota/rest/getgroups', 'state' => 'allowed', 'detail' => 'getgroups answered with 3 groups'),
                array('name' => 'set group', 'method' => 'billing/account/rest/setgroup', 'state' => 'denied', 'detail' => 'add billing.Account.SetGroup to the token\'s API list'),
                array('name' => 'create user (admin)', 'method' => 'system/admin/rest/createaccount', 'state' => 'unknown', 'detail' => 'HTTP 404'),
                array('name' => 'user info', 'method' => 'system/admin/rest/getuserinfo', 'state' => 'not-probed', 'detail' => 'On create is link'),
                array('name' => '<img src=x onerror=alert(1)>', 'method' => 'x', 'state' => 'allowed', 'detail' => '"quoted" & <b>bold</b> ' . self::TOKEN),
            ),
        ));
        $module = $this->module($this->fakeHost('report', $report, 0, 10, 'host', ModuleTest::infoReport()));
        $this->assertTrue($module->testConnection(), implode('; ', $module->recordedErrors()));
        $infos = $module->recordedInfos();
        $this->assertSame(array(
            'CloudPe capability group list: allowed (getgroups answered with 3 groups)',
            'CloudPe capability set group: DENIED — add billing.Account.SetGroup to the token&#039;s API list',
            'CloudPe capability create user (admin): unknown on this platform (HTTP 404)',
            'CloudPe capability user info: not probed (On create is link)',
            'CloudPe capability &lt;img src=x onerror=alert(1)&gt;: allowed (&quot;quoted&quot; &amp; &lt;b&gt;bold&lt;/b&gt; [REDACTED])',
        ), array_slice($infos, 1, 5));
        $this->assertStringEndsWith('; limits: memory 128 MiB, deadline 108 s, responses 64 MiB, 16 connections; on CloudPe the token may: group list, &lt;img src=x onerror=alert(1)&gt;; may not: set group', $infos[6], 'the "what the module may do" summary');
        $this->assertNoToken($module);
    }

    public function testAFailedProbeIsAWarningNotAFailure()
    {
        $report = self::report('test-connection', array(
            'checks' => array(array('name' => 'API reachable', 'passed' => true, 'detail' => 'ok')),
            'warnings' => array('capability probe failed: transport: connection reset'),
        ));
        $module = $this->module($this->fakeHost('report', $report));
        $this->assertTrue($module->testConnection());
        $this->assertContains('Warning: capability probe failed: transport: connection reset', $module->recordedInfos());
        $this->assertSame(array(), $module->recordedErrors());
        $this->assertStringNotContainsString('CloudPe capability', implode("\n", $module->recordedInfos()));
    }
}
