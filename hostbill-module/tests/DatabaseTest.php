<?php

/**
 * Issue 25 item 9: what the module writes to HostBill's tables, against a real MariaDB holding
 * HostBill's own table definitions (fixtures/hostbill-tables.sql), with the handle in either of the
 * error modes HostBill's may have (exceptions, or silent: `false` and errorInfo), and in strict and
 * lenient SQL mode (HostBill asks admins to turn strict mode off, see docs/hostbill.md).
 */
class DatabaseTest extends ScriptedHostTestCase
{
    /** Each test starts with HostBill's tables alone; those that queue retries install the module's. */
    protected $moduleTables = false;

    public static function errorModes()
    {
        return array('exceptions' => array(PDO::ERRMODE_EXCEPTION), 'silent' => array(PDO::ERRMODE_SILENT));
    }

    public static function errorAndSqlModes()
    {
        $cases = array();
        foreach (self::errorModes() as $name => $mode) {
            $cases["{$name}, strict"] = array($mode[0], true);
            $cases["{$name}, lenient"] = array($mode[0], false);
        }
        return $cases;
    }

    private static function outage($message)
    {
        return array('error' => array('kind' => 'transport', 'message' => $message, 'code' => null));
    }

    public function testTheTablesAreHostBillsOwnInARealServer()
    {
        $db = HBRegistry::$db;
        $this->assertSame('mysql', $db->getAttribute(PDO::ATTR_DRIVER_NAME));
        $this->assertStringContainsString('MariaDB', $db->query('SELECT VERSION()')->fetchColumn());
        $columns = $db->columns;
        $this->assertSame(array('id', 'date', 'account_id', 'admin_login', 'module', 'manual', 'action', 'change', 'result', 'error', 'event', 'ip'), $columns['hb_account_logs']);
        $this->assertSame(array('task', 'name', 'lastrun', 'status', 'count', 'metadata', 'output', 'run_every', 'run_every_time', 'profile_id'), $columns['hb_cron_tasks']);
        $this->assertSame(array('id', 'module', 'type', 'config', 'filename', 'version', 'active', 'modname', 'subtype', 'sort_order', 'settings', 'access', 'remote'), $columns['hb_modules_configuration']);
        $this->assertSame(array('product_id', 'module', 'main', 'server', 'options'), $columns['hb_products_modules']);
        $this->assertSame(array('hb_account_logs' => array(), 'hb_cron_tasks' => array(), 'hb_modules_configuration' => array(), 'hb_products_modules' => array()), $db->tables, 'each test starts with empty tables');
        try {
            $db->insertRow('hb_modules_configuration', array('id' => '7', 'filename' => 'class.cloudpe.php'));
            $this->fail('a row without the columns install.sql requires was accepted');
        } catch (PDOException $e) {
            $this->assertStringContainsString("Field 'module' doesn't have a default value", $e->getMessage());
        }
        $install = new HostBillTestDb(false);
        $this->assertNotContains('profile_id', $install->columns['hb_cron_tasks'], 'install.sql alone: no profile_id');
        $this->assertNotContains('ip', $install->columns['hb_account_logs']);
    }

    /** @dataProvider errorModes */
    public function testInstallRegistersTheCronTasksInEitherSchema($errorMode)
    {
        foreach (array(false, true) as $profileId) {
            HBRegistry::$db = new HostBillTestDb($profileId, $errorMode);
            HbLog::$lines = array();
            HBRegistry::$db->insertRow('hb_modules_configuration', CronTest::moduleRow('2.1.0'));
            $module = new cloudpe();
            $this->assertTrue($module->install());
            $this->assertTrue($module->upgrade('2.1.0'));
            $rows = array_column(HBRegistry::$db->tables['hb_cron_tasks'], null, 'task');
            $this->assertSame(array('custom:7:call_Daily', 'custom:7:call_EveryRun', 'custom:7:call_Hourly', 'custom:7:call_Monthly'), array_keys($rows));
            $this->assertSame(array('Time', '1200', '0000-00-00 00:00:00'), array($rows['custom:7:call_Daily']['run_every'], $rows['custom:7:call_Daily']['run_every_time'], $rows['custom:7:call_Daily']['lastrun']));
            if ($profileId) {
                $this->assertSame('1', $rows['custom:7:call_Daily']['profile_id']);
            }
            $this->assertStringContainsString('the daily sync task custom:7:call_Daily is already registered', HbLog::text());
            $this->assertSame(array(), $module->recordedErrors());
        }
    }

    /** @dataProvider errorModes */
    public function testAFailedActionItsRetryAndTheAccountLogRoundTrip($errorMode)
    {
        HBRegistry::$db = new HostBillTestDb(true, $errorMode);
        self::installModuleTables();
        HbAdmin::$logged = HbAdmin::NONE;
        ApiWrapper::$accounts = array(array('id' => '101', 'client_id' => '11', 'server_id' => '4', 'status' => 'Active'));
        $module = $this->scripted();
        $this->answer('suspend', self::outage('could not reach CloudPe: connection refused'), 1);
        $this->assertFalse($module->Suspend());
        $queued = HBRegistry::$db->tables['hb_cloudpe_retries'];
        $this->assertCount(1, $queued);
        $this->assertSame(array('101', '4', 'suspend', 'queued', '1', cloudpe_retries::time($this->now), cloudpe_retries::time($this->now + 300), 'transport'), array_values(array_slice($queued[0], 0, 8)));

        $this->now += 300;
        $this->answer('suspend', array('outcome' => array('message' => 'suspended', 'facts' => array('cloudpe-status' => '2 (inactive)'))));
        $this->assertSame('CloudPe retries: account #101 suspend: succeeded on attempt 2; HostBill\'s accountSuspend recorded it (status Active -> Suspended)', cloudpe_retries::everyRun($module, null, null, $this->queue()));
        $this->assertSame(array(), HBRegistry::$db->tables['hb_cloudpe_retries']);
        $log = HBRegistry::$db->accountLog('101');
        $this->assertCount(2, $log);
        $this->assertSame(array('Automation', '0', '0', 'CloudPeSuspend', 'could not reach CloudPe: connection refused'), array($log[0]['admin_login'], $log[0]['manual'], $log[0]['result'], $log[0]['event'], $log[0]['error']));
        $this->assertSame(array('1', 'CloudPeRetry', '', 'CloudPe'), array($log[1]['result'], $log[1]['event'], $log[1]['ip'], $log[1]['module']));
        $this->assertContains(array('name' => 'cloudpe-status', 'from' => '', 'to' => '2 (inactive)'), $log[1]['change']['data']);
    }

    /** @dataProvider errorModes */
    public function testADatabaseThatWentAwayIsReportedAndNothingIsLost($errorMode)
    {
        HBRegistry::$db = new HostBillTestDb(true, $errorMode);
        HBRegistry::$db->broken = true;
        $module = $this->scripted();
        $this->answer('suspend', array('error' => array('kind' => 'not-found', 'message' => 'no user 1234', 'code' => null)), 1);
        $this->assertFalse($module->Suspend());
        $this->assertSame(array('no user 1234'), $module->recordedErrors());
        $this->assertContains(array('account', 'CloudPe: suspend failed; not retried (run by ann.admin): no user 1234 [status: Active -> Active; error kind: not-found]', '101'), HbLog::$lines);
        $this->assertStringContainsString('account #101: the account log (hb_account_logs) refused the row: ', HbLog::text());
        $this->assertStringContainsString('MySQL server has gone away', HbLog::text());
        $controller = new cloudpe_controller();
        $controller->module = new cloudpe();
        $output = $controller->call_EveryRun();
        $this->assertStringStartsWith('CloudPe retries: could not read the retry queue (hb_cloudpe_retries): ', $output);
        $this->assertStringContainsString('MySQL server has gone away', $output);
    }

    /**
     * HostBill's tables are `CHARSET=utf8` (three bytes a character): an emoji in CloudPe's error
     * made a strict server refuse the account log row and the retry (so an outage's suspend was never
     * retried), and a lenient one cut the text at the emoji.
     *
     * @dataProvider errorAndSqlModes
     */
    public function testCloudpeTextBeyondTheBasicPlaneKeepsItsRowsWhole($errorMode, $strict)
    {
        HBRegistry::$db = new HostBillTestDb(true, $errorMode);
        HBRegistry::$db->exec($strict ? "SET SESSION sql_mode = 'STRICT_TRANS_TABLES'" : "SET SESSION sql_mode = ''");
        self::installModuleTables();
        HbAdmin::$logged = HbAdmin::NONE;
        ApiWrapper::$accounts = array(array('id' => '101', 'client_id' => '11', 'server_id' => '4', 'status' => 'Active'));
        $module = $this->scripted();
        $this->answer('suspend', self::outage("CloudPe answered 503 \u{1F525} Service busy, retry later"), 1);
        $this->assertFalse($module->Suspend());
        $log = HBRegistry::$db->accountLog('101');
        $this->assertCount(1, $log, HbLog::text());
        $this->assertSame("CloudPe answered 503 \u{FFFD} Service busy, retry later", $log[0]['error']);
        $this->assertStringStartsWith('CloudPe: suspend failed; queued', $log[0]['action']);
        $row = $this->queue()->find('101');
        $this->assertNotNull($row, 'the suspend is queued for a retry');
        $this->assertSame("(transport) CloudPe answered 503 \u{FFFD} Service busy, retry later", '(' . $row['last_kind'] . ') ' . $row['last_error']);
    }
}
