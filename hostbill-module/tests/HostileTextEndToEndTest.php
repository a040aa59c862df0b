<?php

/**
 * Issue 24 item 3 end to end: CloudPe users whose email and group hold markup (and a terminal
 * escape), served by the simulated CloudPe, reach the account page, the account's log and the
 * monthly reconciliation's line as text, through the real host and signed component.
 */
class HostileTextEndToEndTest extends RealHostTestCase
{
    const MARKED = 7001;
    const UNLINKED = 7002;
    const EMAIL = '<img src=x onerror=alert(1)>@evil.example';
    const GROUP = "<script>alert(\"group\")</script>\e[2J";
    const UNLINKED_EMAIL = '<a href="javascript:alert(2)">me</a>@evil.example';

    protected static function requiredEnv()
    {
        return array_merge(parent::requiredEnv(), array('CLOUDPE_TRUSTED_KEYS'));
    }

    protected static function simAccounts()
    {
        $accounts = array(
            array('uid' => self::MARKED, 'email' => self::EMAIL, 'status' => 1, 'isEnabled' => true, 'group' => array('name' => self::GROUP), 'createdOn' => '2024-03-01 10:00:00'),
            array('uid' => self::UNLINKED, 'email' => self::UNLINKED_EMAIL, 'status' => 1, 'isEnabled' => true, 'group' => array('name' => 'default'), 'createdOn' => '2024-03-01 10:00:00'),
        );
        $file = self::$scratch . '/accounts.json';
        file_put_contents($file, json_encode($accounts));
        return array('--accounts', $file);
    }

    private static function realHosts(cloudpe $module)
    {
        $module->useHostFactory(function ($connection, $timeout, $secrets) {
            return new cloudpe_host(getenv('HOSTBILL_MODULE_HOST_BIN'), getenv('CLOUDPE_COMPONENT'), $timeout, $secrets, self::cache(), array(), getenv('CLOUDPE_TRUSTED_KEYS'));
        });
        return $module;
    }

    private function assertClean($text)
    {
        foreach (array('<img', '<script', '<a href', "\e") as $bad) {
            $this->assertStringNotContainsString($bad, $text);
        }
    }

    public function testTheAccountPageAndItsLogShowTheUsersMarkupAsText()
    {
        $module = self::realHosts(new cloudpe());
        $module->connect(self::app('7'));
        ApiWrapper::$clients['31'] = array('cloudpeid' => (string) self::MARKED);
        $module->setAccount(array('id' => '131', 'client_id' => '31', 'server_id' => '7', 'status' => 'Suspended'));
        $this->assertSame(array('suspended' => 0), $module->getSynchInfo(), implode('; ', $module->recordedErrors()));
        $values = $module->detailValues();
        $this->assertSame('&lt;img src=x onerror=alert(1)&gt;@evil.example', $values['cloudpe_email']);
        $this->assertSame('&lt;script&gt;alert(&quot;group&quot;)&lt;/script&gt;', $values['cloudpe_group']);
        $log = HBRegistry::$db->accountLog('131');
        $this->assertCount(1, $log);
        $this->assertContains(array('name' => 'cloudpe-email', 'from' => '', 'to' => '&lt;img src=x onerror=alert(1)&gt;@evil.example'), $log[0]['change']['data']);
        $everything = HbLog::text() . print_r(HBRegistry::$db->tables, true) . implode("\n", $values) . implode("\n", $module->recordedInfos());
        $this->assertClean($everything);
        $this->assertNoSession($everything);
    }

    public function testTheReconciliationLineShowsTheUsersMarkupAsText()
    {
        self::app('7');
        ApiWrapper::$accounts = array(array('id' => '131', 'client_id' => '31', 'server_id' => '7', 'status' => 'Active'));
        ApiWrapper::$clients = array('31' => array('email' => 'ann@client.example', 'cloudpeid' => (string) self::MARKED));
        $controller = new cloudpe_controller();
        $controller->module = self::realHosts(new cloudpe());
        $output = $controller->call_Monthly();
        $this->assertStringContainsString('1 CloudPe users no account points at: uid ' . self::UNLINKED . ' &lt;a href=&quot;javascript:alert(2)&quot;&gt;me&lt;/a&gt;@evil.example', $output);
        $this->assertStringContainsString('HostBill ann@client.example, CloudPe &lt;img src=x onerror=alert(1)&gt;@evil.example', $output);
        $this->assertClean($output . HbLog::text());
    }
}
