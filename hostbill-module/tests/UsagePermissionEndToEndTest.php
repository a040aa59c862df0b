<?php

/**
 * The usage import against a CloudPe whose session token may not read billing history (result
 * 8202): one line naming the method to allow, nothing billed, no cursor moved. The simulator
 * refuses the method for this class (`--deny-method`).
 */
class UsagePermissionEndToEndTest extends RealHostTestCase
{
    protected static function requiredEnv()
    {
        return array_merge(parent::requiredEnv(), array('CLOUDPE_TRUSTED_KEYS'));
    }

    protected static function simAccounts()
    {
        return array_merge(parent::simAccounts(), array('--deny-method', 'getaccountbillinghistorybyperiodinner'));
    }

    public function testAMissingPermissionIsOneLineNamingTheMethodAndBillsNothing()
    {
        HbAdmin::$logged = HbAdmin::NONE;
        cloudpe_usage::createTables();
        self::app('7', array('Usage import' => 'on'));
        ApiWrapper::$accounts[] = array('id' => '7000', 'client_id' => '8000', 'server_id' => '7', 'product_id' => '3', 'status' => 'Active');
        ApiWrapper::$clients['8000'] = array('cloudpeid' => (string) self::FIRST_UID);
        $module = new cloudpe();
        $module->useHostFactory(function ($connection, $timeout, $secrets) {
            return new cloudpe_host(getenv('HOSTBILL_MODULE_HOST_BIN'), getenv('CLOUDPE_COMPONENT'), $timeout, $secrets, self::cache(), array(), getenv('CLOUDPE_TRUSTED_KEYS'));
        });

        $output = cloudpe_usage::hourly($module);

        $this->assertCount(1, explode("\n", $output), $output);
        $this->assertStringContainsString('code 8202', $output);
        $this->assertStringContainsString('getaccountbillinghistorybyperiodinner', $output);
        $this->assertSame(array(), HbMetered::rows());
        $this->assertSame(array(), HBRegistry::$db->tables[cloudpe_usage::CURSORS]);
        $this->assertNoSession($output . HbLog::text());
    }
}
