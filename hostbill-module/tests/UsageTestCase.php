<?php

/**
 * Base of the usage import's tests: App 4 ("Usage import" on), its accounts (101, 102 Active, 103
 * Suspended, 104 Pending, 105 Terminated) on product 3, whose metered variable is cloudpeCost,
 * App 9 of another module, a clock (2026-12-06 12:15 UTC: the window ends at 12:00) and the fake
 * usage host (fixtures/fake-usage-host) answering the plan the test writes.
 */
abstract class UsageTestCase extends FakeHostTestCase
{
    /** 2026-12-06 12:15:00 UTC. */
    const NOW = 1796559300;
    const UNTIL = '2026-12-06T12:00:00Z';
    /** The cost-per-hour plan of the tests' accounts: cost - bonus billed. */
    const HOURS_101 = array(
        array('start' => '2026-12-05T20:00:00Z', 'cost' => '0.1234', 'bonus' => '0.0234', 'facts' => array('resource_cost' => '0.08', 'storage_cost' => '0.02', 'traffic_cost' => '0.0234', 'rows' => '3')),
        array('start' => '2026-12-06T10:00:00Z', 'cost' => '0.5', 'bonus' => '0', 'facts' => array('resource_cost' => '0.5', 'rows' => '1')),
        array('start' => '2026-12-06T11:00:00Z', 'cost' => '0.02', 'bonus' => '0.02', 'facts' => array('rows' => '1')),
    );
    const HOURS_102 = array(
        array('start' => '2026-12-06T11:00:00Z', 'cost' => '1.25', 'bonus' => '0.25', 'facts' => array('storage_cost' => '1.25', 'rows' => '2')),
    );

    /** @var int */
    protected $now = self::NOW;
    /** @var array the fake host's plan */
    protected $plan = array();
    /** @var string */
    protected $timezone;

    protected function setUp(): void
    {
        parent::setUp();
        $this->timezone = date_default_timezone_get();
        date_default_timezone_set('UTC');
        $this->now = self::NOW;
        HbAdmin::$logged = HbAdmin::NONE;
        HbApps::add('4', 'CloudPe EU', array('host' => 'eu.cloudpe.example', 'status_url' => 'https://eu.cloudpe.example', 'field1' => 'cluster', 'field2' => self::TOKEN), array('Client field code' => 'cloudpeid', 'Usage import' => 'on'));
        HbApps::add('9', 'cPanel 1', array('host' => 'cp.example'), null, 'Cpanel', '12');
        ApiWrapper::$accounts = array(
            array('id' => '101', 'client_id' => '11', 'server_id' => '4', 'product_id' => '3', 'status' => 'Active'),
            array('id' => '102', 'client_id' => '12', 'server_id' => '4', 'product_id' => '3', 'status' => 'Active'),
            array('id' => '103', 'client_id' => '13', 'server_id' => '4', 'product_id' => '3', 'status' => 'Suspended'),
            array('id' => '104', 'client_id' => '13', 'server_id' => '4', 'product_id' => '3', 'status' => 'Pending'),
            array('id' => '105', 'client_id' => '13', 'server_id' => '4', 'product_id' => '3', 'status' => 'Terminated'),
            array('id' => '110', 'client_id' => '14', 'server_id' => '9', 'product_id' => '8', 'status' => 'Active'),
        );
        ApiWrapper::$clients = array('11' => array('cloudpeid' => '12'), '12' => array('cloudpeid' => '13'), '13' => array('cloudpeid' => '14'), '14' => array());
        ApiWrapper::$meteredVariables = array('3' => array(array(
            'id' => '21', 'product_id' => '3', 'name' => 'CloudPe usage', 'variable_name' => 'cloudpeCost', 'unit_name' => 'currency unit',
            'cycle' => 'Monthly', 'scheme' => 'tiered', 'options' => '0', 'prices' => array(array('id' => '90', 'variable_id' => '21', 'qty' => '0', 'qty_max' => '0', 'price' => '1.0000')),
        )));
        $this->plan = array('accounts' => array(
            '101' => array('hours' => self::HOURS_101),
            '102' => array('hours' => self::HOURS_102),
            '103' => array('error' => array('kind' => 'not-found', 'message' => 'CloudPe has no user with uid 14')),
        ));
    }

    protected function tearDown(): void
    {
        date_default_timezone_set($this->timezone);
        parent::tearDown();
    }

    /** The env of the fake usage host (its plan file is written now). */
    protected function hostEnv()
    {
        file_put_contents("{$this->dir}/plan.json", json_encode($this->plan, JSON_UNESCAPED_SLASHES));
        return array(
            'FAKE_USAGE_PLAN' => "{$this->dir}/plan.json",
            'FAKE_HOST_STDIN' => "{$this->dir}/usage-stdin.json",
            'FAKE_HOST_ARGS' => "{$this->dir}/usage-args.txt",
        );
    }

    /** The module HostBill's cron gets, its hosts the fake usage host. */
    protected function prototype()
    {
        $env = $this->hostEnv();
        $module = new cloudpe();
        $module->useHostFactory(function ($connection, $timeout) use ($env) {
            return new cloudpe_host(__DIR__ . '/fixtures/fake-usage-host', $this->dir . '/module.wasm', $timeout, array(self::TOKEN), null, $env);
        });
        return $module;
    }

    /** Runs the hourly import in this process; returns the cron's output. */
    protected function import()
    {
        return cloudpe_usage::hourly($this->prototype(), null, null, function () {
            return $this->now;
        });
    }

    /** How many times the fake host ran. */
    protected function hostRuns()
    {
        $file = "{$this->dir}/plan.json.runs";
        return file_exists($file) ? count(file($file)) : 0;
    }

    /** The request the fake host last read. */
    protected function usageRequest()
    {
        return json_decode(file_get_contents("{$this->dir}/usage-stdin.json"), true);
    }

    /**
     * HostBill's metered usage rows (the doubles' table) as [account, date_created, qty, charge,
     * output], amounts normalised, in id order.
     */
    protected static function billed()
    {
        return array_map(function ($row) {
            return array($row['account_id'], $row['date_created'], cloudpe_decimal::normal($row['qty']), cloudpe_decimal::normal($row['charge']), $row['output']);
        }, HbMetered::rows());
    }

    /** The rows billed for the tests' plan of accounts 101 and 102 (11:00 of 101 bills nothing). */
    protected static function expectedBilled()
    {
        return array(
            array('101', '2026-12-05 20:00:00', '0.1', '0.1', 'CloudPe usage 2026-12-05T20:00Z'),
            array('101', '2026-12-06 10:00:00', '0.5', '0.5', 'CloudPe usage 2026-12-06T10:00Z'),
            array('102', '2026-12-06 11:00:00', '1', '1', 'CloudPe usage 2026-12-06T11:00Z'),
        );
    }

    /** The module's cursors: account => [last_hour, test_hour]. */
    protected static function cursors()
    {
        $cursors = array();
        foreach (HBRegistry::$db->tables[cloudpe_usage::CURSORS] as $row) {
            $cursors[$row['account_id']] = array($row['last_hour'], $row['test_hour']);
        }
        return $cursors;
    }

    /** The ledger: [account, hour, billable, state] in hour order. */
    protected static function ledger()
    {
        $rows = array();
        foreach (HBRegistry::$db->tables[cloudpe_usage::LEDGER] as $row) {
            $rows[] = array($row['account_id'], $row['hour'], cloudpe_decimal::normal($row['billable']), $row['state']);
        }
        usort($rows, function ($a, $b) {
            return strcmp($a[0] . $a[1], $b[0] . $b[1]);
        });
        return $rows;
    }

    /** Sets App 4's custom settings (merged over the setUp's). */
    protected static function appSettings(array $settings)
    {
        $custom = unserialize(HbApps::$rows['4']['custom']);
        HbApps::$rows['4']['custom'] = serialize(array_merge($custom, $settings));
    }
}
