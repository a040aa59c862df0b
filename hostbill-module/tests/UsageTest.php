<?php

/**
 * Issue 22: the hourly usage import, through a fake host printing the usage contract's report,
 * against HostBill's tables and the module's own in a real MariaDB.
 */
class UsageTest extends UsageTestCase
{
    public function testANormalRunBillsEachHourOnceWithExplicitChargesAndMovesTheCursors()
    {
        $output = $this->import();

        $this->assertSame(self::expectedBilled(), self::billed(), 'each hour with something to bill, once; 11:00 of #101 (cost = bonus) bills nothing');
        $this->assertSame('App #4 "CloudPe EU": usage import: 3 accounts (2 read, 0 already up to date), 4 hours with usage, 1.6 billed (cost 1.8934, bonus 0.2934), 2 skipped, 1 errors; 3 CloudPe requests; first error: account #103: not-found: CloudPe has no user with uid 14', $output);
        $request = $this->usageRequest();
        $this->assertSame(self::UNTIL, $request['usage_until']);
        $this->assertSame(array(101, 102, 103), array_column($request['accounts'], 'id'), 'Active and Suspended accounts of App 4 only');
        $this->assertSame(array('2026-12-05T12:00:00Z'), array_values(array_unique(array_column($request['accounts'], 'usage_from'))), 'first run: 24 hours of backfill');
        $this->assertSame(array('cloudpeid' => '12'), $request['accounts'][0]['custom_fields']);
        $this->assertSame('on', $request['app']['custom']['Usage import']);
        $this->assertSame(array('101' => array('2026-12-06 12:00:00', null), '102' => array('2026-12-06 12:00:00', null)), self::cursors(), 'the account with an error keeps no cursor');
        $this->assertSame(array(
            array('101', '2026-12-05 20:00:00', '0.1', 'pushed'),
            array('101', '2026-12-06 10:00:00', '0.5', 'pushed'),
            array('102', '2026-12-06 11:00:00', '1', 'pushed'),
        ), self::ledger());
        foreach (ApiWrapper::calls('meteredAddUsage') as $call) {
            $this->assertSame($call['qty'], $call['charge'], 'the charge is always given: HostBill never re-prices money');
            $this->assertSame('cloudpeCost', $call['variable']);
            $this->assertSame($call['date_created'], $call['date_updated']);
        }
        $log = HBRegistry::$db->accountLog('101');
        $this->assertCount(1, $log);
        $this->assertSame('CloudPe usage import: 3 hours with usage, 2 billed (0.6)', $log[0]['action']);
        $this->assertSame('Automation', $log[0]['admin_login']);
        $this->assertSame(array('name' => 'billed (cost - bonus)', 'from' => '', 'to' => '0.6'), $log[0]['change']['data'][3]);
        $this->assertSame(array('name' => 'source', 'from' => '', 'to' => 'CloudPe usage import'), $log[0]['change']['data'][4]);
        $this->assertStringContainsString('error CloudPe Module: usage import App #4: account #103: not-found: CloudPe has no user with uid 14', HbLog::text());
        $this->assertNoToken(new cloudpe(), $output . file_get_contents("{$this->dir}/usage-args.txt"));

        // The same hour again: only #103 (its error kept its cursor) is read again; nothing billed twice.
        $again = $this->import();
        $this->assertSame(array(103), array_column($this->usageRequest()['accounts'], 'id'));
        $this->assertSame(self::expectedBilled(), self::billed());
        $this->assertStringContainsString('3 accounts (0 read, 2 already up to date)', $again);
        // Once #103 reads too, nothing is left: the host is not even started.
        $this->plan['accounts']['103'] = array('hours' => array());
        $this->import();
        $runs = $this->hostRuns();
        $this->import();
        $this->assertSame($runs, $this->hostRuns());
        $this->assertSame(self::expectedBilled(), self::billed());
    }

    public function testTheNextHourReadsOnlyTheNewHourFromTheCursor()
    {
        $this->import();
        $this->now += 3600;
        $this->plan['accounts']['101']['hours'][] = array('start' => '2026-12-06T12:00:00Z', 'cost' => '0.3', 'bonus' => '0.1', 'facts' => array());
        $this->plan['accounts']['103'] = array('hours' => array());
        $output = $this->import();

        $accounts = array_column($this->usageRequest()['accounts'], 'usage_from', 'id');
        $this->assertSame(array(101 => '2026-12-06T12:00:00Z', 102 => '2026-12-06T12:00:00Z', 103 => '2026-12-05T13:00:00Z'), $accounts, 'from each cursor; #103 (no cursor yet) from its backfill');
        $this->assertSame('2026-12-06T13:00:00Z', $this->usageRequest()['usage_until']);
        $billed = self::billed();
        $this->assertCount(4, $billed);
        $this->assertSame(array('101', '2026-12-06 12:00:00', '0.2', '0.2', 'CloudPe usage 2026-12-06T12:00Z'), $billed[3]);
        $this->assertStringContainsString('1 hours with usage, 0.2 billed (cost 0.3, bonus 0.1)', $output);
    }

    public function testTheWindowNeverHoldsTheCurrentHourNorOneThatEndedLessThanTenMinutesAgo()
    {
        $this->assertSame(gmmktime(11, 0, 0, 12, 6, 2026), cloudpe_usage::untilFor(gmmktime(12, 9, 59, 12, 6, 2026)));
        $this->assertSame(gmmktime(12, 0, 0, 12, 6, 2026), cloudpe_usage::untilFor(gmmktime(12, 10, 0, 12, 6, 2026)));
        $this->assertSame(gmmktime(12, 0, 0, 12, 6, 2026), cloudpe_usage::untilFor(gmmktime(12, 59, 59, 12, 6, 2026)));
    }

    public function testBackfillHoursAreTheAppsSettingAndABadValueIsRefusedByName()
    {
        self::appSettings(array('Usage backfill hours' => '3'));
        $this->import();
        $this->assertSame(array('2026-12-06T09:00:00Z'), array_values(array_unique(array_column($this->usageRequest()['accounts'], 'usage_from'))));
        $this->assertSame(array(array('101', '2026-12-06 10:00:00', '0.5', '0.5', 'CloudPe usage 2026-12-06T10:00Z'), array('102', '2026-12-06 11:00:00', '1', '1', 'CloudPe usage 2026-12-06T11:00Z')), self::billed(), 'only the hours of the backfill');

        foreach (array('Usage backfill hours' => array('0', '745', '2.5', 'abc'), 'Usage import' => array('yes'), 'Usage time zone' => array('Europe/Paris', 'UTC+5', 'UTC+15:00')) as $setting => $values) {
            foreach ($values as $value) {
                HbLog::$lines = array();
                self::appSettings(array('Usage backfill hours' => '3', 'Usage import' => 'on', 'Usage time zone' => 'UTC', $setting => $value));
                $runs = $this->hostRuns();
                $output = $this->import();
                $this->assertStringContainsString("FAILED", $output, "{$setting} = {$value}");
                $this->assertStringContainsString("the App setting \"{$setting}\" is \"{$value}\"", $output);
                $this->assertSame($runs, $this->hostRuns(), 'nothing runs');
            }
        }
        $this->assertCount(2, self::billed(), 'and nothing more was billed');
    }

    public function testTwoImportsOfOneAppNeverRunAtOnce()
    {
        $server = HostBillTestServer::get();
        $other = HostBillTestServer::connect($server, $server['database']);
        $this->assertSame('1', (string) $other->query("SELECT GET_LOCK('cloudpe_usage_4', 0)")->fetchColumn());
        $output = $this->import();
        $this->assertStringContainsString('usage import FAILED', $output);
        $this->assertStringContainsString('another usage import of this App is still running (MySQL lock cloudpe_usage_4 is held): this run did nothing', $output);
        $this->assertSame(0, $this->hostRuns());
        $this->assertSame(array(), self::billed());
        $other = null; // the other run ends (or dies): its lock goes with its connection
        // The server notices the closed connection a moment later: wait for it (bounded).
        for ($i = 0; $i < 500 && (string) HBRegistry::$db->query("SELECT IS_FREE_LOCK('cloudpe_usage_4')")->fetchColumn() !== '1'; $i++) {
            usleep(10000);
        }
        $this->import();
        $this->assertSame(self::expectedBilled(), self::billed());
    }

    public function testTheTimeZoneSettingGoesToTheComponentAsItIs()
    {
        self::appSettings(array('Usage time zone' => 'UTC+05:30'));
        $this->import();
        $this->assertSame('UTC+05:30', $this->usageRequest()['app']['custom']['Usage time zone']);
    }

    public function testAnAppWithTheImportOffIsNotReadAndSaysSo()
    {
        self::appSettings(array('Usage import' => 'off'));
        $this->assertSame('App #4 "CloudPe EU": usage import off', $this->import());
        $this->assertSame(0, $this->hostRuns());
        $this->assertSame(0, ApiWrapper::count('getAccounts'));
    }

    public function testAPermissionRefusalIsOneLineNamingTheMethodToAllow()
    {
        $this->plan = array('accounts' => array(), 'error' => array('kind' => 'remote-api', 'code' => 8202, 'message' => 'CloudPe denied getaccountbillinghistorybyperiodinner: allow billing.Account.GetAccountBillingHistoryByPeriodInner (getaccountbillinghistorybyperiodinner) in the API list of the App\'s session token'));
        $output = $this->import();
        $this->assertSame(1, substr_count($output, "\n") + 1);
        $this->assertStringContainsString('usage import FAILED', $output);
        $this->assertStringContainsString('allow the method billing.Account.GetAccountBillingHistoryByPeriodInner (billing/account/rest/getaccountbillinghistorybyperiodinner) for the App\'s session token in CloudPe', $output);
        $this->assertSame(array(), self::billed());
        $this->assertSame(array(), self::cursors());
        $this->assertStringContainsString('error CloudPe Module: usage import App #4 "CloudPe EU": CloudPe refused to read the billing history (code 8202', HbLog::text());
    }

    public function testARejectedTokenFailsTheAppWithoutTheToken()
    {
        $this->plan = array('accounts' => array(), 'error' => array('kind' => 'authentication', 'code' => null, 'message' => 'CloudPe rejected the session token ' . self::TOKEN));
        $output = $this->import();
        $this->assertStringContainsString('usage import FAILED', $output);
        $this->assertStringContainsString('authentication: CloudPe rejected the session token [REDACTED]', $output);
        $this->assertSame(array(), self::billed());
        $this->assertSame(array(), self::cursors());
        $this->assertNoToken(new cloudpe(), $output);
    }

    public function testAModuleWithoutUsageSaysToUpgradeIt()
    {
        $this->plan = array('accounts' => array(), 'error' => array('kind' => 'unsupported', 'code' => null, 'message' => 'the module does not implement usage'));
        $this->assertStringContainsString('the installed CloudPe component predates the usage import', $this->import());
    }

    public function testADeadlineImportsTheAccountsReadAndTheOthersKeepTheirCursor()
    {
        $this->plan['stop_after'] = 1;
        $this->plan['error'] = array('kind' => 'timeout', 'code' => null, 'message' => 'the module did not finish before the deadline', 'limit' => array('name' => 'deadline', 'value' => '1602 s'));
        $this->plan['exit'] = 3;
        $output = $this->import();
        $this->assertSame(array_slice(self::expectedBilled(), 0, 2), self::billed(), '#101 was read: imported');
        $this->assertSame(array('101' => array('2026-12-06 12:00:00', null)), self::cursors(), '#102 and #103 keep theirs');
        $this->assertStringContainsString('usage import FAILED (3 accounts (1 read', $output);
        $this->assertStringContainsString('stopped by the deadline limit (1602 s); the accounts read before it were imported, the others keep their cursor', $output);

        unset($this->plan['stop_after'], $this->plan['error'], $this->plan['exit']);
        $this->import();
        $this->assertSame(self::expectedBilled(), self::billed(), 'the next run reads the rest, and bills nothing twice');
        $this->assertSame(array(102 => '2026-12-05T12:00:00Z', 103 => '2026-12-05T12:00:00Z'), array_column($this->usageRequest()['accounts'], 'usage_from', 'id'), 'only the accounts behind');
    }

    /**
     * The host's report is hostile: each bad row is an error for its account and bills nothing;
     * a row for an account not sent, or a second one, is refused; the good account is billed.
     *
     * @dataProvider hostileRows
     */
    public function testAnUnusableRowBillsNothingForItsAccount($row, $why)
    {
        $this->plan['accounts']['102'] = array('row' => $row);
        $output = $this->import();
        $this->assertSame(array_slice(self::expectedBilled(), 0, 2), self::billed(), 'only #101');
        $this->assertArrayNotHasKey('102', self::cursors());
        $this->assertStringContainsString($why, htmlspecialchars_decode(HbLog::text(), ENT_QUOTES));
        $this->assertStringContainsString('2 errors', $output);
    }

    public function hostileRows()
    {
        $window = array('uid' => 13, 'from' => '2026-12-05T12:00:00Z', 'until' => self::UNTIL);
        $hour = array('start' => '2026-12-06T11:00:00Z', 'cost' => '1.25', 'bonus' => '0.25', 'facts' => array());
        return array(
            'hour outside the window' => array($window + array('hours' => array(array('start' => '2026-12-06T12:00:00Z') + $hour)), 'hour #1: its start 2026-12-06T12:00:00Z is outside the window'),
            'hour before the window' => array($window + array('hours' => array(array('start' => '2026-12-05T11:00:00Z') + $hour)), 'is outside the window'),
            'not a whole hour' => array($window + array('hours' => array(array('start' => '2026-12-06T11:30:00Z') + $hour)), 'is not a whole UTC hour'),
            'hours not ascending' => array($window + array('hours' => array(array('start' => '2026-12-06T11:00:00Z') + $hour, array('start' => '2026-12-06T10:00:00Z') + $hour)), 'hour #2: its start 2026-12-06T10:00:00Z does not follow'),
            'the same hour twice' => array($window + array('hours' => array($hour, $hour)), 'does not follow the hour before it'),
            'cost as a JSON number' => array($window + array('hours' => array(array('cost' => 1.25) + $hour)), 'its cost "1.25" is not an exact decimal string'),
            'cost with an exponent' => array($window + array('hours' => array(array('cost' => '1e3') + $hour)), 'its cost "1e3" is not an exact decimal'),
            'cost finer than the ledger keeps' => array($window + array('hours' => array(array('cost' => '0.30000000000000004') + $hour)), 'its cost "0.30000000000000004" has more than 10 digits after the point'),
            'negative cost' => array($window + array('hours' => array(array('cost' => '-1.25') + $hour)), 'its cost "-1.25" is not'),
            'no bonus' => array($window + array('hours' => array(array_diff_key($hour, array('bonus' => 1)))), 'its bonus missing is not'),
            'bonus above the cost' => array($window + array('hours' => array(array('bonus' => '2') + $hour)), 'its bonus 2 is more than its cost 1.25'),
            'another window' => array(array('from' => '2026-12-04T12:00:00Z') + $window + array('hours' => array()), 'its window is not the one asked'),
            'no hours' => array($window, 'it has neither hours, skipped nor error'),
            'a fact that is an object' => array($window + array('hours' => array(array('facts' => array('x' => array('y' => 1))) + $hour)), 'a fact is not a string'),
        );
    }

    public function testCloudpesTextIsEscapedWhereItReachesTheAdmin()
    {
        $this->plan['accounts']['103'] = array('error' => array('kind' => 'not-found', 'message' => "<img src=x onerror=alert(1)>\e[31m ok"));
        $this->plan['accounts']['102'] = array('skipped' => '<b>skipped</b>');
        $output = $this->import();
        $this->assertStringContainsString('account #103: not-found: &lt;img src=x onerror=alert(1)&gt; ok', $output);
        $this->assertStringNotContainsString('<img', $output . HbLog::text());
        $this->assertStringNotContainsString("\e[", $output . HbLog::text());
    }

    public function testRowsForAccountsNotSentOrTwiceAreRefusedAsContractViolations()
    {
        $this->plan['extra_rows'] = array(
            array('account_id' => 110, 'uid' => 1, 'from' => '2026-12-05T12:00:00Z', 'until' => self::UNTIL, 'hours' => array(array('start' => '2026-12-06T11:00:00Z', 'cost' => '9', 'bonus' => '0'))),
            array('account_id' => 102, 'uid' => 13, 'from' => '2026-12-05T12:00:00Z', 'until' => self::UNTIL, 'hours' => array(array('start' => '2026-12-06T10:00:00Z', 'cost' => '9', 'bonus' => '0'))),
        );
        $output = $this->import();
        $this->assertSame(self::expectedBilled(), self::billed(), '#110 (another module\'s App) gets nothing; #102\'s second row nothing');
        $this->assertStringContainsString('2 rows refused (module contract violation)', $output);
        $this->assertStringContainsString('refused a usage row for account #110, which this import did not send', HbLog::text());
        $this->assertStringContainsString('refused a second usage row for account #102', HbLog::text());
    }

    public function testAProductWithoutTheVariableIsAnErrorNamingItAndRecordsNothing()
    {
        ApiWrapper::$meteredVariables = array('3' => array());
        $output = $this->import();
        $this->assertSame(array(), self::billed());
        $this->assertSame(array(), self::ledger());
        $this->assertSame(array(), self::cursors());
        $this->assertStringContainsString('its product #3 has no metered variable cloudpeCost', $output);
        $this->assertSame(1, ApiWrapper::count('meteredGetVariables'), 'asked once per product and run');
    }

    public function testARefusedPushKeepsTheCursorAndTheNextRunBillsItOnce()
    {
        ApiWrapper::$meteredRefuse = 'Account is not metered';
        $output = $this->import();
        $this->assertSame(array(), self::billed());
        $this->assertSame(array(), self::cursors());
        $this->assertStringContainsString('HostBill did not take the usage of 2026-12-05T20:00:00Z (meteredAddUsage: Account is not metered)', $output);
        foreach (HBRegistry::$db->tables[cloudpe_usage::LEDGER] as $row) {
            $this->assertSame('pending', $row['state']);
            $this->assertNull($row['attempted_at'], 'HostBill said no: nothing was added');
        }

        ApiWrapper::$meteredRefuse = null;
        $this->now += 3600;
        $this->import();
        $this->assertSame(self::expectedBilled(), self::billed());
        $this->assertSame(0, ApiWrapper::count('meteredGetUsage'), 'rows never attempted need no check');
    }

    /**
     * An hour whose push was interrupted (attempted, no usage id): found in meteredGetUsage, it is
     * marked pushed; absent from a listing that reaches back to it, it is pushed; absent from a
     * listing that does not reach back that far (another billing period), it is held.
     */
    public function testAnInterruptedPushIsReconciledAndNeverGuessed()
    {
        $this->plan['accounts'] = array('101' => array('hours' => self::HOURS_101));
        HBRegistry::$db->insertRow(cloudpe_usage::LEDGER, array('server_id' => '4', 'account_id' => '101', 'hour' => '2026-12-05 20:00:00', 'cost' => '0.1234', 'bonus' => '0.0234', 'billable' => '0.1', 'state' => 'pending', 'attempted_at' => '2026-12-06 11:15:00', 'created_at' => '2026-12-06 11:15:00'));
        HBRegistry::$db->insertRow(cloudpe_usage::LEDGER, array('server_id' => '4', 'account_id' => '101', 'hour' => '2026-12-06 10:00:00', 'cost' => '0.5', 'bonus' => '0', 'billable' => '0.5', 'state' => 'pending', 'attempted_at' => '2026-12-06 11:15:00', 'created_at' => '2026-12-06 11:15:00'));
        HbMetered::insert(array('account_id' => '101', 'variable_id' => '21', 'variable_name' => 'cloudpeCost', 'qty' => '0.1', 'charge' => '0.1', 'output' => 'CloudPe usage 2026-12-05T20:00Z', 'rawoutput' => '', 'date_created' => '2026-12-05 20:00:00', 'date_updated' => '2026-12-05 20:00:00'));
        $output = $this->import();
        $this->assertSame(array_slice(self::expectedBilled(), 0, 2), self::billed(), '20:00 found, 10:00 absent from a listing reaching back to it: pushed once');
        $this->assertStringContainsString('1 hours found already in HostBill (earlier run interrupted)', $output);

        // The same, but the listing starts after the hour: it cannot tell.
        HostBillDoubles::reset();
        $this->setUp();
        ApiWrapper::$meteredPeriodStart = '2026-12-06 00:00:00';
        HBRegistry::$db->insertRow(cloudpe_usage::LEDGER, array('server_id' => '4', 'account_id' => '101', 'hour' => '2026-12-05 20:00:00', 'cost' => '0.1234', 'bonus' => '0.0234', 'billable' => '0.1', 'state' => 'pending', 'attempted_at' => '2026-12-06 11:15:00', 'created_at' => '2026-12-06 11:15:00'));
        $output = $this->import();
        $this->assertSame(array(array('102', '2026-12-06 11:00:00', '1', '1', 'CloudPe usage 2026-12-06T11:00Z')), self::billed(), '#101 is held: nothing of it billed, not even its later hours');
        $this->assertStringContainsString('account #101: the usage of 2026-12-05T20:00:00Z was being pushed when an earlier import stopped', $output);
        $this->assertSame(array('101', '2026-12-05 20:00:00', '0.1', 'unconfirmed'), self::ledger()[0]);
        $this->assertArrayNotHasKey('101', self::cursors());

        // The admin checked HostBill (docs/usage.md "An unconfirmed hour"): not there, so push it.
        HBRegistry::$db->exec("UPDATE hb_cloudpe_usage_ledger SET state = 'pending', attempted_at = NULL WHERE account_id = 101 AND hour = '2026-12-05 20:00:00'");
        $this->import();
        $this->assertSame(array('101', '2026-12-05 20:00:00', '0.1', '0.1', 'CloudPe usage 2026-12-05T20:00Z'), self::billed()[1]);
        $this->assertCount(3, self::billed());
    }

    public function testTestModeWritesWhatWouldBeBilledAndBillsNothing()
    {
        mkdir("{$this->dir}/csv", 0700);
        self::appSettings(array('Usage import' => 'test', 'Usage test CSV folder' => "{$this->dir}/csv"));
        $this->plan['accounts']['102']['hours'][0]['facts']['note'] = '=HYPERLINK("http://evil.example","x")';
        $this->plan['accounts']['101']['hours'][1]['facts']['group'] = '<b>beta</b>';
        $this->plan['accounts']['101']['hours'][1]['facts']['echo'] = 'session ' . self::TOKEN;
        $output = $this->import();

        $this->assertSame(array(), self::billed());
        $this->assertSame(array(), self::ledger());
        $this->assertSame(0, ApiWrapper::count('meteredAddUsage'));
        $this->assertSame(array('101' => array(null, '2026-12-06 12:00:00'), '102' => array(null, '2026-12-06 12:00:00')), self::cursors(), 'only the test cursor moves');
        $csv = "{$this->dir}/csv/usage-test-app4.csv";
        $this->assertStringContainsString("usage import (test): 3 accounts (2 read, 0 already up to date), 4 hours with usage, 1.6 would be billed (cost 1.8934, bonus 0.2934), 2 skipped, 1 errors; 3 CloudPe requests; test mode, nothing billed: {$csv}", $output);
        $lines = array_map('str_getcsv', file($csv, FILE_IGNORE_NEW_LINES));
        $this->assertSame(cloudpe_usage_csv::HEADER, $lines[0]);
        $this->assertSame(array('4', '101', '2026-12-05T20:00:00Z', '0.1234', '0.0234', '0.1', '{"resource_cost":"0.08","storage_cost":"0.02","traffic_cost":"0.0234","rows":"3"}'), $lines[1]);
        $this->assertSame(array('4', '101', '2026-12-06T11:00:00Z', '0.02', '0.02', '0', '{"rows":"1"}'), $lines[3]);
        $this->assertCount(5, $lines);
        $this->assertSame('0600', sprintf('%04o', fileperms($csv) & 07777));
        $this->assertStringContainsString('usage import App #4 (test, nothing billed): account #101 hour 2026-12-05T20:00:00Z cost 0.1234 bonus 0.0234 would bill 0.1 (resource_cost=0.08, storage_cost=0.02, traffic_cost=0.0234, rows=3)', HbLog::text());
        $this->assertStringContainsString('group=&lt;b&gt;beta&lt;/b&gt;', HbLog::text(), 'CloudPe\'s text is escaped in the log');
        $this->assertStringNotContainsString('<b>beta', HbLog::text());
        $this->assertNoToken(new cloudpe(), $output . file_get_contents($csv));
        $this->assertStringContainsString('session [REDACTED]', file_get_contents($csv));

        // Nothing new: the CSV does not grow. Switched on, the real import backfills from scratch.
        $this->import();
        $this->assertCount(5, file($csv));
        self::appSettings(array('Usage import' => 'on'));
        $this->import();
        $this->assertSame(self::expectedBilled(), self::billed());
    }

    public function testACsvFormulaFromCloudpeIsWrittenAsText()
    {
        mkdir("{$this->dir}/csv", 0700);
        self::appSettings(array('Usage import' => 'test', 'Usage test CSV folder' => "{$this->dir}/csv"));
        $this->plan['accounts'] = array('102' => array('hours' => array(array('facts' => array('=cmd' => '1')) + self::HOURS_102[0])));
        $this->import();
        $lines = array_map('str_getcsv', file("{$this->dir}/csv/usage-test-app4.csv", FILE_IGNORE_NEW_LINES));
        $this->assertSame('{"=cmd":"1"}', $lines[1][6], 'a JSON cell starts with {');
        $csv = cloudpe_usage_csv::open("{$this->dir}/csv", '5');
        $csv->write('1', '2026-12-06T11:00:00Z', '1', '0', '1', array());
        $reflection = new ReflectionMethod('cloudpe_usage_csv', 'line');
        $reflection->setAccessible(true);
        $reflection->invoke($csv, array('=HYPERLINK("x")', '-1.5', '@sum', '+1'));
        $csv->close();
        $last = array_map('str_getcsv', file("{$this->dir}/csv/usage-test-app5.csv", FILE_IGNORE_NEW_LINES));
        $this->assertSame(array('\'=HYPERLINK("x")', '-1.5', '\'@sum', '\'+1'), $last[2], 'a formula is prefixed; a number is not');
    }

    /** @dataProvider unsafeFolders */
    public function testTestModeRefusesAnUnsafeCsvPathAndWritesNothing($make, $why)
    {
        $folder = call_user_func($make, $this->dir);
        self::appSettings(array('Usage import' => 'test', 'Usage test CSV folder' => $folder));
        $output = $this->import();
        $this->assertStringContainsString('usage import (test) FAILED', $output);
        $this->assertStringContainsString($why, $output);
        $this->assertSame(array(), self::cursors(), 'no test cursor moves when nothing was written');
        $this->assertSame('untouched', file_get_contents("{$this->dir}/target"));
    }

    public function unsafeFolders()
    {
        $target = function ($dir) {
            file_put_contents("{$dir}/target", 'untouched');
        };
        return array(
            'a link to a folder' => array(function ($dir) use ($target) {
                $target($dir);
                mkdir("{$dir}/real", 0700);
                symlink("{$dir}/real", "{$dir}/link");
                return "{$dir}/link";
            }, 'is a symbolic link or lies under one'),
            'a folder others may write' => array(function ($dir) use ($target) {
                $target($dir);
                mkdir("{$dir}/open", 0700);
                chmod("{$dir}/open", 0777);
                return "{$dir}/open";
            }, 'is writable by group or others (mode 0777)'),
            'the CSV is a link' => array(function ($dir) use ($target) {
                $target($dir);
                mkdir("{$dir}/csv", 0700);
                symlink("{$dir}/target", "{$dir}/csv/usage-test-app4.csv");
                return "{$dir}/csv";
            }, 'usage-test-app4.csv is not a plain file'),
            'the CSV has two names' => array(function ($dir) use ($target) {
                $target($dir);
                mkdir("{$dir}/csv", 0700);
                link("{$dir}/target", "{$dir}/csv/usage-test-app4.csv");
                return "{$dir}/csv";
            }, 'is not a plain file (a link, or a file with several names)'),
            'a relative path' => array(function ($dir) use ($target) {
                $target($dir);
                return 'csv';
            }, 'is not an absolute path'),
            'dot-dot' => array(function ($dir) use ($target) {
                $target($dir);
                return "{$dir}/csv/../csv";
            }, 'is not an absolute path without . or ..'),
            'a missing folder' => array(function ($dir) use ($target) {
                $target($dir);
                return "{$dir}/missing";
            }, 'does not exist'),
        );
    }

    public function testTheAccountPageShowsTheLastImportedHourAndTheCostThisPeriod()
    {
        $this->import();
        $report = self::report('sync', array('decisions' => array(array('account_id' => '101', 'decision' => 'unchanged', 'facts' => array()))));
        $module = $this->module($this->fakeHost('report', $report), array(), array('Usage import' => 'on'));
        $module->setAccount(array('id' => '101', 'client_id' => '11', 'server_id' => '4', 'status' => 'Active', 'product_id' => '3'));
        $module->getSynchInfo();
        $values = $module->detailValues();
        $this->assertSame('every hour before 2026-12-06 12:00 UTC', $values['cloudpe_usage_last']);
        $this->assertSame('0.6 (cloudpeCost, HostBill&#039;s current billing period)', $values['cloudpe_usage_period']);

        $off = $this->module($this->fakeHost('report', $report), array(), array());
        $off->getSynchInfo();
        $this->assertSame('', $off->detailValues()['cloudpe_usage_last'], 'import off: nothing shown');
    }

    public function testTheCronControllerRunsTheImportHourlyAndNeverThrows()
    {
        $controller = new cloudpe_controller();
        $controller->module = $this->prototype();
        self::appSettings(array('Usage import' => 'off'));
        $this->assertSame('App #4 "CloudPe EU": usage import off', $controller->call_Hourly());
        HBRegistry::$db->exec('DROP TABLE hb_cloudpe_usage_cursors');
        self::appSettings(array('Usage import' => 'on'));
        $output = $controller->call_Hourly();
        $this->assertStringContainsString('usage import FAILED', $output);
        $this->assertStringContainsString('hb_cloudpe_usage_cursors', $output);
    }
}
