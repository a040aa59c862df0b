<?php

/**
 * Issue 23 end to end: the monthly reconciliation through the real hostbill-module-host and
 * signed 2.4 component against the simulated CloudPe proposes a link and reports group drift;
 * the admin's button on the account page ("Link proposed CloudPe user") then links the client; the daily sync reports the drift
 * too, and nothing is changed on CloudPe (see RealHostTestCase).
 */
class LinksEndToEndTest extends RealHostTestCase
{
    protected static function requiredEnv()
    {
        return array_merge(parent::requiredEnv(), array('CLOUDPE_TRUSTED_KEYS'));
    }

    protected function setUp(): void
    {
        parent::setUp();
        HBRegistry::$db->insertRow('hb_modules_configuration', CronTest::moduleRow('2.5.0'));
        HBRegistry::$db->insertRow('hb_products_modules', array('product_id' => '3', 'module' => '7', 'main' => '1', 'server' => '7', 'options' => serialize(array('option1' => 'premium'))));
        HBRegistry::$db->insertRow('hb_products_modules', array('product_id' => '4', 'module' => '7', 'main' => '1', 'server' => '7', 'options' => serialize(array('option1' => ''))));
        self::app('7');
        $first = self::FIRST_UID;
        ApiWrapper::$accounts = array(
            // No CloudPe id, the client's email is exactly one user's (in another case and padded).
            array('id' => '101', 'client_id' => '301', 'server_id' => '7', 'status' => 'Active', 'product_id' => '4'),
            // Linked; its product names "premium", the simulator's users are in "default".
            array('id' => '102', 'client_id' => '302', 'server_id' => '7', 'status' => 'Active', 'product_id' => '3'),
            // No CloudPe id and an email no user has: nothing proposed.
            array('id' => '103', 'client_id' => '303', 'server_id' => '7', 'status' => 'Active', 'product_id' => '4'),
        );
        ApiWrapper::$clients = array(
            '301' => array('email' => ' USER' . ($first + 3) . '@Example.com '),
            '302' => array('email' => 'user' . ($first + 4) . '@example.com', 'cloudpeid' => (string) ($first + 4)),
            '303' => array('email' => 'nobody@example.org'),
        );
    }

    private static function realHosts(cloudpe $module)
    {
        $module->useHostFactory(function ($connection, $timeout, $secrets) {
            return new cloudpe_host(getenv('HOSTBILL_MODULE_HOST_BIN'), getenv('CLOUDPE_COMPONENT'), $timeout, $secrets, self::cache(), array(), getenv('CLOUDPE_TRUSTED_KEYS'));
        });
        return $module;
    }

    public function testTheReconciliationProposesALinkTheAdminAppliesAndDriftIsReported()
    {
        $linked = (string) (self::FIRST_UID + 3);
        $drifted = (string) (self::FIRST_UID + 4);
        $before = array($this->remote((int) $linked), $this->remote((int) $drifted));

        HbAdmin::$logged = HbAdmin::NONE;
        $line = cloudpe_reconcile::monthly(self::realHosts(new cloudpe_with_group_option()));
        $this->assertStringContainsString("1 proposed links (an admin applies each with the button Link proposed CloudPe user on the account page): #101 (client #301) -> uid {$linked} user{$linked}@example.com", $line);
        $this->assertStringContainsString("1 accounts in another CloudPe group than their product's: #102 uid {$drifted} (premium → default)", $line);
        $this->assertStringNotContainsString('#103', substr($line, strpos($line, 'proposed links')));
        $this->assertSame(array('email' => ' USER' . $linked . '@Example.com '), ApiWrapper::$clients['301'], 'the cron linked nothing');
        $this->assertSame(array('101'), array_column(HBRegistry::$db->tables[cloudpe_links::TABLE], 'account_id'));

        HbAdmin::$logged = HbAdmin::STAFF;
        $module = self::realHosts(new cloudpe_with_group_option());
        $module->connect((new HbServersModel())->getServerDetails('7'));
        $module->setAccount(ApiWrapper::$accounts[0]);
        $this->assertTrue($module->linkProposedUser(), implode('; ', $module->recordedErrors()));
        $this->assertSame($linked, ApiWrapper::$clients['301']['cloudpeid']);
        $log = HBRegistry::$db->accountLog('101');
        $this->assertSame(array('ann.admin', 'CloudPeLink', cloudpe_links::AUDIT_ACTION), array($log[0]['admin_login'], $log[0]['event'], $log[0]['action']));
        $this->assertContains(array('name' => 'CloudPe uid', 'from' => '', 'to' => $linked), $log[0]['change']['data']);

        HbAdmin::$logged = HbAdmin::NONE;
        $daily = cloudpe_sync::daily(self::realHosts(new cloudpe_with_group_option()));
        $this->assertStringContainsString("1 account in another CloudPe group than their product's: #102 (premium → default) (nothing changed)", $daily);
        $this->assertSame($before, array($this->remote((int) $linked), $this->remote((int) $drifted)), 'CloudPe unchanged');
        $this->assertNoSession(HbLog::text() . $line . $daily . serialize(HBRegistry::$db->tables));
    }
}
