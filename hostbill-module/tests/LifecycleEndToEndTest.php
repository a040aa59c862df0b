<?php

/**
 * Contract 2.4.0 end to end (docs/lifecycle.md): the PHP module drives the real host, which runs
 * the signed component against the simulated CloudPe: Create links by email (and provisions),
 * ChangePackage moves the user's group, the group list fills the product option, Test Connection
 * lists the capabilities. Needs what RealHostTestCase needs plus CLOUDPE_TRUSTED_KEYS.
 */
class LifecycleEndToEndTest extends RealHostTestCase
{
    protected static function requiredEnv()
    {
        return array_merge(parent::requiredEnv(), array('CLOUDPE_TRUSTED_KEYS'));
    }

    /** A module on App 7 (the simulator) whose every operation runs the real host. */
    private function module(array $custom = array())
    {
        $module = new cloudpe();
        $module->useHostFactory(function ($connection, $timeout, $secrets) {
            return new cloudpe_host(getenv('HOSTBILL_MODULE_HOST_BIN'), getenv('CLOUDPE_COMPONENT'), $timeout, $secrets, self::cache(), array(), getenv('CLOUDPE_TRUSTED_KEYS'));
        });
        $module->connect(self::app('7', $custom));
        return $module;
    }

    /** The simulated CloudPe's users whose email contains `$email` (its filter is a substring match). */
    private function remoteByEmail($email)
    {
        $query = http_build_query(array('appid' => 'cluster', 'session' => self::SESSION, 'filterField' => 'email', 'filterValue' => $email));
        $reply = json_decode(file_get_contents(self::$url . '/1.0/billing/account/rest/getaccounts?' . $query), true);
        return isset($reply['array']) ? $reply['array'] : array();
    }

    /** An active, enabled user of the simulator from `$from` on, unused by the other tests. */
    private function activeUser($from)
    {
        for ($uid = $from; $uid < self::FIRST_UID + self::ACCOUNTS; $uid++) {
            $remote = $this->remote($uid);
            if ($remote !== null && $remote['status'] === 1 && (!isset($remote['isEnabled']) || $remote['isEnabled'] !== false)) {
                return $remote;
            }
        }
        $this->fail("the simulator has no active user from uid {$from}");
    }

    public function testCreateLinksTheOneUserWithTheClientsEmail()
    {
        $user = $this->activeUser(self::FIRST_UID + 40);
        $uid = (int) $user['uid'];
        $module = $this->module();
        $module->setAccount(array('id' => '31', 'client_id' => '41', 'server_id' => '7', 'status' => 'Pending'));
        // Another case and spaces: the match is exact once trimmed, whatever the case.
        ApiWrapper::$clients['41'] = array('firstname' => 'Ann', 'email' => '  ' . strtoupper($user['email']) . ' ', 'cloudpeid' => '');

        $this->assertTrue($module->Create(), implode('; ', $module->recordedErrors()));
        $this->assertSame((string) $uid, $module->savedDetails()['cloudpe_uid']);
        $this->assertSame((string) $uid, ApiWrapper::$clients['41']['cloudpeid'], 'the empty client field is set');
        $log = HBRegistry::$db->accountLog('31');
        $this->assertSame('CloudPe: linked to CloudPe user ' . $uid . ' (by email ' . strtoupper($user['email']) . ')', end($log)['action']);
        $this->assertSame($user, $this->remote($uid), 'linking by email changes nothing on CloudPe');

        // The account's actions now work by the field Create set.
        $module->setAccount(array('id' => '31', 'client_id' => '41', 'server_id' => '7', 'status' => 'Active'));
        $this->assertTrue($module->Suspend(), implode('; ', $module->recordedErrors()));
        $this->assertSame(2, $this->remote($uid)['status']);
        $this->assertNoSession(HbLog::text() . implode("\n", $module->recordedInfos()) . implode("\n", $module->recordedErrors()) . json_encode($log));
    }

    public function testCreateWithAnEmailNoUserHasLinksNothing()
    {
        $module = $this->module();
        $module->setAccount(array('id' => '32', 'client_id' => '42', 'server_id' => '7', 'status' => 'Pending'));
        ApiWrapper::$clients['42'] = array('firstname' => 'Nobody', 'email' => 'nobody-at-all@nowhere.example', 'cloudpeid' => '');
        $this->assertFalse($module->Create());
        $this->assertStringContainsString('nobody-at-all@nowhere.example', $module->recordedErrors()[0], 'the message names the email it looked for');
        $this->assertSame('', $module->savedDetails()['cloudpe_uid']);
        $this->assertSame('', ApiWrapper::$clients['42']['cloudpeid']);
        $this->assertSame(0, ApiWrapper::count('setClientDetails'));
    }

    /** On create = provision (experimental): the user is created once, linked, and no password is seen. */
    public function testProvisioningCreatesTheUserOnceAndLinksIt()
    {
        $email = 'new.client.' . getmypid() . '@provision.example';
        $this->assertSame(array(), $this->remoteByEmail($email), 'precondition: no such user');
        $module = $this->module(array('On create' => 'provision', 'Call log' => 'on'));
        $module->setAccount(array('id' => '33', 'client_id' => '43', 'server_id' => '7', 'status' => 'Pending'));
        ApiWrapper::$clients['43'] = array('firstname' => 'New', 'email' => $email, 'cloudpeid' => '');

        $this->assertTrue($module->Create(), implode('; ', $module->recordedErrors()));
        $users = $this->remoteByEmail($email);
        $this->assertCount(1, $users, 'one user created');
        $uid = (string) $users[0]['uid'];
        $this->assertSame($uid, $module->savedDetails()['cloudpe_uid']);
        $this->assertSame($uid, ApiWrapper::$clients['43']['cloudpeid']);
        $log = HBRegistry::$db->accountLog('33');
        $this->assertSame("CloudPe: linked to CloudPe user {$uid} (provisioned)", end($log)['action']);

        // Create again (as after a reply lost on the way back): the same user, no second one.
        ApiWrapper::$clients['43']['cloudpeid'] = '';
        $this->assertTrue($module->Create(), implode('; ', $module->recordedErrors()));
        $this->assertCount(1, $this->remoteByEmail($email));
        $this->assertSame($uid, ApiWrapper::$clients['43']['cloudpeid']);

        $everything = HbLog::text() . implode("\n", $module->recordedInfos()) . implode("\n", $module->recordedErrors()) . json_encode(HBRegistry::$db->accountLog('33'));
        $this->assertDoesNotMatchRegularExpression('/"password":"(?!\*{8}")/', $everything, 'a password parameter is only ever logged masked');
        $this->assertNoSession($everything);
    }

    public function testTheGroupListFillsTheProductOptionAndChangePackageMovesTheUser()
    {
        $module = $this->module();
        $choices = $module->getGroups();
        $this->assertIsArray($choices, implode('; ', $module->recordedErrors()));
        $this->assertNotEmpty($choices, 'the simulator has groups');
        foreach ($choices as $choice) {
            $this->assertCount(2, $choice, 'HostBill\'s loadable wants [value, label] pairs');
        }

        $user = $this->activeUser(self::FIRST_UID + 60);
        $uid = (int) $user['uid'];
        $current = is_array($user['group']) ? $user['group']['name'] : (string) $user['group'];
        $target = null;
        foreach ($choices as $choice) {
            if ($choice[0] !== $current) {
                $target = $choice[0];
                break;
            }
        }
        $this->assertNotNull($target, "the simulator lists a group other than {$current}");

        $module = $this->module();
        $module->setAccount(array('id' => '34', 'client_id' => '44', 'server_id' => '7', 'status' => 'Active'));
        ApiWrapper::$clients['44'] = array('email' => $user['email'], 'cloudpeid' => (string) $uid);
        $module->loadProductOptions(array('CloudPe group' => $target));
        $this->assertTrue($module->ChangePackage(), implode('; ', $module->recordedErrors()));
        $this->assertSame($target, $this->remote($uid)['group']['name'], 'the user is in the new package\'s group');
        $this->assertSame($user['status'], $this->remote($uid)['status'], 'and nothing else changed');
        $log = HBRegistry::$db->accountLog('34');
        $this->assertSame('CloudPe: package changed', end($log)['action']);
        $this->assertContains(array('name' => 'product CloudPe group', 'from' => '', 'to' => cloudpe_text::html($target)), end($log)['change']['data']);
    }

    public function testTestConnectionListsTheCapabilities()
    {
        $module = $this->module();
        $this->assertTrue($module->testConnection(), implode('; ', $module->recordedErrors()));
        $lines = array_values(array_filter($module->recordedInfos(), function ($info) {
            return strpos($info, 'CloudPe capability ') === 0;
        }));
        $this->assertNotEmpty($lines, implode("\n", $module->recordedInfos()));
        $this->assertCount(1, preg_grep('/^CloudPe capability group list: allowed/', $lines), 'the simulator lets the token list groups: ' . implode("\n", $lines));
        $this->assertNoSession(implode("\n", $module->recordedInfos()) . HbLog::text());
    }
}
