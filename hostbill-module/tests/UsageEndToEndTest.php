<?php

/**
 * The usage import end to end: HostBill's hourly task drives the real hostbill-module-host, which
 * runs the signed component's `usage` operation against the simulated CloudPe. What lands in
 * HostBill's metered billing is compared, hour by hour, with the simulator's own history (its
 * oracle, `GET /_sim/usage`), never with figures written into the test.
 */
class UsageEndToEndTest extends RealHostTestCase
{
    use UsageChildProcess;

    /** Linked accounts of App 7 (#7000.. -> CloudPe uid 1000..). */
    const LINKED = 12;
    const BACKFILL = 5;

    /** @var string */
    private $timezone;

    protected static function requiredEnv()
    {
        return array_merge(parent::requiredEnv(), array('CLOUDPE_TRUSTED_KEYS'));
    }

    protected function setUp(): void
    {
        parent::setUp();
        $this->timezone = date_default_timezone_get();
        // HostBill's local time is where `date_created` is written; UTC here keeps it comparable.
        date_default_timezone_set('UTC');
        HbAdmin::$logged = HbAdmin::NONE;
        cloudpe_usage::createTables();
        ApiWrapper::$meteredVariables = array('3' => array(array(
            'id' => '21', 'product_id' => '3', 'name' => 'CloudPe usage', 'variable_name' => 'cloudpeCost', 'unit_name' => 'currency unit',
            'cycle' => 'Monthly', 'scheme' => 'tiered', 'options' => '0', 'prices' => array(array('id' => '90', 'variable_id' => '21', 'qty' => '0', 'qty_max' => '0', 'price' => '1.0000')),
        )));
    }

    protected function tearDown(): void
    {
        date_default_timezone_set($this->timezone);
        parent::tearDown();
    }

    /** App 7's accounts: LINKED linked ones (Active, every third Suspended), one Pending, one Terminated. */
    private static function accounts()
    {
        for ($i = 0; $i < self::LINKED; $i++) {
            $id = (string) (7000 + $i);
            ApiWrapper::$accounts[] = array('id' => $id, 'client_id' => (string) (8000 + $i), 'server_id' => '7', 'product_id' => '3', 'status' => $i % 3 === 2 ? 'Suspended' : 'Active');
            ApiWrapper::$clients[(string) (8000 + $i)] = array('cloudpeid' => (string) (self::FIRST_UID + $i));
        }
        ApiWrapper::$accounts[] = array('id' => '7100', 'client_id' => '8000', 'server_id' => '7', 'product_id' => '3', 'status' => 'Pending');
        ApiWrapper::$accounts[] = array('id' => '7101', 'client_id' => '8001', 'server_id' => '7', 'product_id' => '3', 'status' => 'Terminated');
    }

    /** The hourly task's prototype module, its hosts the real binary and the signed component. */
    private static function prototype()
    {
        $module = new cloudpe();
        $module->useHostFactory(function ($connection, $timeout, $secrets) {
            return new cloudpe_host(getenv('HOSTBILL_MODULE_HOST_BIN'), getenv('CLOUDPE_COMPONENT'), $timeout, $secrets, self::cache(), array(), getenv('CLOUDPE_TRUSTED_KEYS'));
        });
        return $module;
    }

    /** The end of the import's window at `$now`: the last hour that closed 10 minutes before. */
    private static function until($now)
    {
        return intdiv($now - 600, 3600) * 3600;
    }

    /**
     * What HostBill should hold, from the simulator's history: [account, date_created, charge]
     * for every hour of the window whose cost - bonus is not zero.
     */
    private static function oracle($from, $until)
    {
        $expected = array();
        for ($i = 0; $i < self::LINKED; $i++) {
            $query = http_build_query(array('uid' => self::FIRST_UID + $i, 'from' => gmdate('Y-m-d\TH:i:s\Z', $from), 'until' => gmdate('Y-m-d\TH:i:s\Z', $until)));
            $reply = json_decode(file_get_contents(self::$url . '/_sim/usage?' . $query), true);
            foreach ($reply['hours'] as $hour) {
                $billable = cloudpe_decimal::sub((string) $hour['cost'], (string) $hour['bonus']);
                if (cloudpe_decimal::compare($billable, '0') !== 0) {
                    $expected[] = array((string) (7000 + $i), gmdate('Y-m-d H:i:s', strtotime($hour['start'])), cloudpe_decimal::normal($billable));
                }
            }
        }
        sort($expected);
        return $expected;
    }

    /** HostBill's metered usage rows as [account, date_created, charge], sorted. */
    private static function billed()
    {
        $rows = array_map(function ($row) {
            return array($row['account_id'], $row['date_created'], cloudpe_decimal::normal($row['charge']));
        }, HbMetered::rows());
        sort($rows);
        return $rows;
    }

    public function testTheHourlyImportBillsCloudpesHistoryOncePerAccountAndHour()
    {
        self::app('7', array('Usage import' => 'on', 'Usage backfill hours' => (string) self::BACKFILL));
        self::accounts();
        $now = time();
        $clock = function () use ($now) {
            return $now;
        };
        $until = self::until($now);
        $expected = self::oracle($until - self::BACKFILL * 3600, $until);
        $this->assertNotEmpty($expected, 'the simulator has usage in the window');

        $output = cloudpe_usage::hourly(self::prototype(), null, null, $clock);

        $this->assertSame($expected, self::billed(), $output);
        $linked = self::LINKED;
        $this->assertMatchesRegularExpression("/^App #7 \"CloudPe sim 7\": usage import: {$linked} accounts \\({$linked} read, 0 already up to date\\), \\d+ hours with usage, [0-9.]+ billed \\(cost [0-9.]+, bonus [0-9.]+\\), 2 skipped, 0 errors; {$linked} CloudPe requests/", $output);
        foreach (ApiWrapper::calls('meteredAddUsage') as $call) {
            $this->assertSame($call['qty'], $call['charge']);
        }
        $this->assertNoSession($output . HbLog::text());

        // The same hour again: every cursor is at the window's end, so nothing is read or billed.
        $again = cloudpe_usage::hourly(self::prototype(), null, null, $clock);
        $this->assertSame($expected, self::billed(), $again);
        $this->assertStringContainsString("{$linked} accounts (0 read, {$linked} already up to date)", $again);

    }

    public function testARejectedTokenFailsTheAppInOneLineAndBillsNothing()
    {
        self::app('7', array('Usage import' => 'on'), 'not-the-session/token');
        self::accounts();

        $output = cloudpe_usage::hourly(self::prototype());

        $this->assertStringStartsWith('App #7 "CloudPe sim 7": ', $output);
        $this->assertStringContainsString('rejected the session token', $output);
        $this->assertSame(array(), HbMetered::rows());
        $this->assertSame(array(), HBRegistry::$db->tables[cloudpe_usage::CURSORS], 'no cursor moves');
        $this->assertNoSession($output . HbLog::text());
    }

    public function testTestModeWritesCloudpesHistoryToTheCsvAndBillsNothing()
    {
        $folder = self::$scratch . '/csv-' . bin2hex(random_bytes(4));
        mkdir($folder, 0700);
        self::app('7', array('Usage import' => 'test', 'Usage backfill hours' => (string) self::BACKFILL, 'Usage test CSV folder' => $folder));
        self::accounts();
        $now = time();
        $until = self::until($now);

        $output = cloudpe_usage::hourly(self::prototype(), null, null, function () use ($now) {
            return $now;
        });

        $this->assertSame(array(), HbMetered::rows(), $output);
        $this->assertSame(0, ApiWrapper::count('meteredAddUsage'));
        $lines = array_map('str_getcsv', file("{$folder}/usage-test-app7.csv", FILE_IGNORE_NEW_LINES));
        $this->assertSame(cloudpe_usage_csv::HEADER, array_shift($lines));
        // Every hour with usage, billable or not: [account, hour, would bill] against the oracle's.
        $written = array();
        foreach ($lines as $line) {
            if (cloudpe_decimal::compare($line[5], '0') !== 0) {
                $written[] = array($line[1], gmdate('Y-m-d H:i:s', strtotime($line[2])), cloudpe_decimal::normal($line[5]));
            }
        }
        sort($written);
        $this->assertSame(self::oracle($until - self::BACKFILL * 3600, $until), $written);
        $this->assertStringContainsString('test mode, nothing billed', $output);
        $this->assertNoSession($output . HbLog::text() . file_get_contents("{$folder}/usage-test-app7.csv"));
    }

    /**
     * Exactly once through the real host: the import is killed (SIGKILL) at each step of its
     * write path, in a PHP process of its own, then run again: HostBill then holds CloudPe's
     * history hour by hour, none twice, none missing; a third run changes nothing.
     *
     * @dataProvider killPoints
     */
    public function testAKillAtAnyStepThenARerunBillsCloudpesHistoryExactlyOnce($failpoint)
    {
        self::app('7', array('Usage import' => 'on', 'Usage backfill hours' => (string) self::BACKFILL));
        self::accounts();
        $now = time();
        $until = self::until($now);
        $expected = self::oracle($until - self::BACKFILL * 3600, $until);
        $first = array_values(array_filter($expected, function ($row) {
            return $row[0] === '7000';
        }));
        $this->assertGreaterThanOrEqual(2, count($first), 'the second push is of the first account (its listing then reaches back)');
        $host = array(
            'binary' => getenv('HOSTBILL_MODULE_HOST_BIN'), 'component' => getenv('CLOUDPE_COMPONENT'), 'secrets' => array(self::SESSION),
            'env' => array(), 'cache' => self::cache(), 'trusted_keys' => getenv('CLOUDPE_TRUSTED_KEYS'),
        );

        $killed = $this->runImportChild($host, $now, $failpoint, self::$scratch);
        $this->assertSame(9, $killed['termsig'], "killed at {$failpoint}: " . $killed['stdout'] . $killed['stderr']);
        $this->assertLessThan(count($expected), count(self::billed()), 'the kill left the import unfinished');

        $rerun = $this->runImportChild($host, $now, null, self::$scratch);
        $this->assertSame(0, $rerun['exit'], $rerun['stdout'] . $rerun['stderr']);
        $this->assertSame($expected, self::billed(), "after a kill at {$failpoint} and a rerun: " . $rerun['stdout']);
        $this->assertNoSession($killed['stdout'] . $killed['stderr'] . $rerun['stdout'] . $rerun['stderr']);

        $this->runImportChild($host, $now, null, self::$scratch);
        $this->assertSame($expected, self::billed(), 'a third run changes nothing');
    }

    public function killPoints()
    {
        return array(
            'after the host answered, before the ledger' => array('before-ledger'),
            'after the ledger rows, before any push' => array('after-ledger'),
            'before the second push (attempted, not sent)' => array('before-push:2'),
            'after the first push, before it is marked' => array('after-push:1'),
            'between two pushes' => array('after-mark:1'),
            'after the pushes of an account, before its cursor' => array('before-cursor:1'),
            'during the cursor write, before its commit' => array('in-cursor:1'),
            'a later account, before its cursor' => array('before-cursor:5'),
        );
    }
}
