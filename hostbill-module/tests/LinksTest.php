<?php

/**
 * Issue 23: the reconciliation's proposed links (shown escaped, stored for the admin), the admin
 * action "Apply proposed links" (only the listed ones, each checked again, an account-log entry
 * each, never by the cron), and group drift in the reconciliation and the daily sync (reported,
 * nothing changed). HostBill's side is the doubles on the real MariaDB (hb_products_modules,
 * hb_account_logs, the module's hb_cloudpe_link_proposals); the host is the fake one, answering
 * the shapes of docs/lifecycle.md ("The host's JSON").
 */
class LinksTest extends FakeHostTestCase
{
    protected function setUp(): void
    {
        parent::setUp();
        HBRegistry::$db->insertRow('hb_modules_configuration', CronTest::moduleRow('2.5.0'));
        // Product 3 names the group "premium" (option1, as HostBill keeps a product's module
        // options); product 4 names none; product 8 belongs to another module (id 9).
        HBRegistry::$db->insertRow('hb_products_modules', array('product_id' => '3', 'module' => '7', 'main' => '1', 'server' => '4', 'options' => serialize(array('option1' => 'premium'))));
        HBRegistry::$db->insertRow('hb_products_modules', array('product_id' => '4', 'module' => '7', 'main' => '1', 'server' => '4', 'options' => serialize(array('option1' => ''))));
        HBRegistry::$db->insertRow('hb_products_modules', array('product_id' => '8', 'module' => '9', 'main' => '1', 'server' => '4', 'options' => serialize(array('option1' => 'trial'))));
        ApiWrapper::$accounts = array(
            array('id' => '5', 'client_id' => '21', 'server_id' => '4', 'status' => 'Active', 'product_id' => '3'),
            array('id' => '6', 'client_id' => '22', 'server_id' => '4', 'status' => 'Active', 'product_id' => '3'),
            array('id' => '7', 'client_id' => '23', 'server_id' => '4', 'status' => 'Suspended', 'product_id' => '4'),
            array('id' => '9', 'client_id' => '24', 'server_id' => '4', 'status' => 'Pending', 'product_id' => '3'),
        );
        ApiWrapper::$clients = array(
            '21' => array('email' => 'ann@x.example'),
            '22' => array('email' => 'bob@x.example', 'cloudpeid' => '123'),
            '23' => array('email' => 'cy@x.example', 'cloudpeid' => '124'),
            '24' => array('email' => 'dee@x.example'),
        );
    }

    /** The controller with the module whose every App answers `$report` (fake host, tag "app{id}"). */
    private function controller(array $report, $exit = 0)
    {
        $module = new cloudpe_with_group_option();
        $module->useHostFactory(function ($connection, $timeout) use ($report, $exit) {
            return $this->fakeHost('report', $report, $exit, $timeout, 'app' . $connection['id']);
        });
        $controller = new cloudpe_controller();
        $controller->module = $module;
        return $controller;
    }

    /** A review's report: accounts 5 and 9 proposed (9's email with markup), account 6 in another group. */
    private static function review(array $extra = array())
    {
        return self::report('reconcile', array('reconciliation' => $extra + array(
            'counts' => array('accounts' => 4, 'remote_users' => 10, 'without_id' => 2, 'proposed_links' => 2, 'group_drift' => 1),
            'without_id' => array(array('account_id' => 5, 'detail' => 'no `cloudpeid`'), array('account_id' => 9, 'detail' => 'no `cloudpeid`')),
            'proposed_links' => array(array('account_id' => 5, 'uid' => 1005, 'email' => 'ann@x.example'), array('account_id' => 9, 'uid' => 1009, 'email' => 'dee@x.example<script>')),
            'group_drift' => array(array('account_id' => 6, 'uid' => 123, 'expected' => 'premium', 'actual' => 'trial<b>')),
            'requests' => 1,
        )));
    }

    /** The monthly reconciliation, run as the cron runs it (no staff member logged in). */
    private function reconcile(array $report = null)
    {
        $this->appRow();
        HbAdmin::$logged = HbAdmin::NONE;
        $output = $this->controller($report ?: self::review())->call_Monthly();
        HbAdmin::$logged = HbAdmin::STAFF;
        return $output;
    }

    /** A module connected to App 4 for the admin's action. */
    private function adminModule()
    {
        $module = new cloudpe_with_group_option();
        $module->connect((new HbServersModel())->getServerDetails('4'));
        return $module;
    }

    private function stored()
    {
        return HBRegistry::$db->tables[cloudpe_links::TABLE];
    }

    // ---- the reconciliation ----

    public function testTheReconciliationSendsEachAccountsProductOptionsByName()
    {
        $this->reconcile();
        $sent = $this->sentRequest('app4')['accounts'];
        $this->assertSame(array('5', '6', '7', '9'), array_column($sent, 'id'));
        $this->assertSame(array('CloudPe group' => 'premium'), $sent[0]['product'], 'option1 named as the module declares it');
        $this->assertSame(array('CloudPe group' => ''), $sent[2]['product'], 'a product naming no group still sends its options');
        $this->assertSame('ann@x.example', $sent[0]['email']);
        $this->assertSame(array('SELECT product_id, options FROM hb_products_modules WHERE module = :module ORDER BY product_id'), array_values(array_filter(HBRegistry::$db->log, function ($sql) {
            return strpos($sql, 'hb_products_modules') !== false;
        })), 'every product of the module in one SELECT, not one per account');
    }

    public function testTheReconciliationShowsProposedLinksAndGroupDriftEscapedAndStoresTheProposals()
    {
        $output = $this->reconcile();
        $this->assertSame(
            'App #4 "CloudPe EU" reconciliation: 4 accounts, 10 CloudPe users (1 CloudPe requests); 2 without a valid CloudPe id: #5 (no `cloudpeid`), #9 (no `cloudpeid`); '
            . '2 proposed links (an admin applies each with the button Link proposed CloudPe user on the account page): #5 (client #21) -> uid 1005 ann@x.example, #9 (client #24) -> uid 1009 dee@x.example&lt;script&gt;; '
            . '1 accounts in another CloudPe group than their product\'s: #6 uid 123 (premium → trial&lt;b&gt;)',
            $output
        );
        $this->assertStringNotContainsString('<script>', $output);
        $this->assertStringNotContainsString('trial<b>', HbLog::text());
        $rows = $this->stored();
        $this->assertSame(array(array('4', '5', '21', '1005', 'ann@x.example'), array('4', '9', '24', '1009', 'dee@x.example<script>')), array_map(function ($r) {
            return array($r['server_id'], $r['account_id'], $r['client_id'], $r['uid'], $r['email']);
        }, $rows), 'the proposals the line lists, kept as CloudPe gave them (escaped where shown)');
        $this->assertSame(0, ApiWrapper::count('setClientDetails'), 'the cron never applies a link');
        $this->assertSame(array('email' => 'ann@x.example'), ApiWrapper::$clients['21']);
        $this->assertSame(array(), ApiWrapper::$edits, 'drift changes nothing');
    }

    public function testAProposalForAnAccountWhoseClientHasAnIdOrWithoutAUidIsRefused()
    {
        $output = $this->reconcile(self::report('reconcile', array('reconciliation' => array(
            'counts' => array('accounts' => 4, 'remote_users' => 3, 'proposed_links' => 3),
            'proposed_links' => array(
                array('account_id' => 6, 'uid' => 1006, 'email' => 'bob@x.example'),
                array('account_id' => 5, 'uid' => 0, 'email' => 'ann@x.example'),
                array('account_id' => 9, 'uid' => 1009, 'email' => 'dee@x.example'),
            ),
        ))));
        $this->assertStringContainsString('1 proposed links (an admin applies each with the button Link proposed CloudPe user on the account page): #9 (client #24) -> uid 1009 dee@x.example; 2 entries refused (module contract violation: a proposed link for account #6, whose client already has a CloudPe id, ...)', $output);
        $this->assertSame(array('9'), array_column($this->stored(), 'account_id'));
    }

    public function testProposalsAndDriftAboutAccountsNotSentAreRefused()
    {
        $output = $this->reconcile(self::report('reconcile', array('reconciliation' => array(
            'counts' => array('accounts' => 4, 'remote_users' => 3, 'proposed_links' => 2, 'group_drift' => 2),
            'proposed_links' => array(array('account_id' => 999, 'uid' => 1999, 'email' => 'x@y'), array('account_id' => 5, 'uid' => 1005, 'email' => 'ann@x.example')),
            'group_drift' => array(array('account_id' => 6, 'uid' => 123, 'expected' => 'premium', 'actual' => 'trial'), array('account_id' => 6, 'uid' => 123, 'expected' => 'premium', 'actual' => 'gold')),
        ))));
        $this->assertStringContainsString('1 proposed links (an admin applies each with the button Link proposed CloudPe user on the account page): #5 (client #21) -> uid 1005 ann@x.example; 1 accounts in another CloudPe group than their product\'s: #6 uid 123 (premium → trial); 2 entries refused (module contract violation: a finding (proposed_links) about account #999, which this reconciliation did not send, ...)', $output);
        $this->assertStringContainsString('refused a second finding (group_drift) about account #6', HbLog::text());
        $this->assertSame(array('5'), array_column($this->stored(), 'account_id'), 'a proposal about an account not sent is never kept');
    }

    public function testANewReconciliationReplacesTheStoredProposalsOfItsAppOnly()
    {
        cloudpe_links::store('5', array(array('account_id' => '77', 'client_id' => '1', 'uid' => '1', 'email' => 'o@x')));
        $this->reconcile();
        $this->reconcile(self::report('reconcile', array('reconciliation' => array('counts' => array('accounts' => 4, 'remote_users' => 3)))));
        $this->assertSame(array(array('5', '77')), array_map(function ($r) {
            return array($r['server_id'], $r['account_id']);
        }, $this->stored()), 'App 4 has no proposal any more; App 5\'s is left alone');
    }

    // ---- Apply proposed links ----

    public function testApplyingLinksTheListedAccountsWithAnAccountLogEntryEach()
    {
        $this->reconcile();
        $module = $this->adminModule();
        $this->assertTrue($module->applyProposedLinks());
        $this->assertSame('1005', ApiWrapper::$clients['21']['cloudpeid']);
        $this->assertSame('1009', ApiWrapper::$clients['24']['cloudpeid']);
        $this->assertSame(array(array('id' => '21', 'cloudpeid' => '1005'), array('id' => '24', 'cloudpeid' => '1009')), ApiWrapper::calls('setClientDetails'));
        $this->assertSame(array(
            'Apply proposed links: 2 linked, 0 skipped',
            'linked #5: client #21 linked to CloudPe uid 1005 (ann@x.example)',
            'linked #9: client #24 linked to CloudPe uid 1009 (dee@x.example&lt;script&gt;)',
        ), $module->recordedInfos());
        $log = HBRegistry::$db->accountLog('5');
        $this->assertCount(1, $log);
        $this->assertSame(array('ann.admin', '1', '1', 'CloudPeLink', cloudpe_links::AUDIT_ACTION), array($log[0]['admin_login'], $log[0]['manual'], $log[0]['result'], $log[0]['event'], $log[0]['action']));
        $this->assertSame("CloudPe: linked by admin from the reconciliation's proposal", $log[0]['action']);
        $this->assertContains(array('name' => 'client #21 field cloudpeid', 'from' => '', 'to' => '1005'), $log[0]['change']['data']);
        $this->assertContains(array('name' => 'CloudPe email', 'from' => '', 'to' => 'ann@x.example'), $log[0]['change']['data']);
        $this->assertContains(array('name' => 'CloudPe email', 'from' => '', 'to' => 'dee@x.example&lt;script&gt;'), HBRegistry::$db->accountLog('9')[0]['change']['data']);
        $this->assertSame(array(), $this->stored(), 'applied proposals are gone');
        $this->assertSame(array(), HBRegistry::$db->accountLog('6'), 'no entry for an account not proposed');

        $this->assertTrue($module->applyProposedLinks(), 'a second press finds nothing to do');
        $this->assertStringContainsString('has no proposed link', $module->recordedInfos()[3]);
        $this->assertSame(2, ApiWrapper::count('setClientDetails'));
    }

    /** The account page's button (`$commands`), on account `$id` of App 4. */
    private function accountPageModule($id)
    {
        $module = $this->adminModule();
        foreach (ApiWrapper::$accounts as $row) {
            if ($row['id'] === $id) {
                $module->setAccount($row);
            }
        }
        return $module;
    }

    public function testTheAccountPagesButtonAppliesThatAccountsProposalOnly()
    {
        $this->assertSame(array('linkProposedUser' => 'Link proposed CloudPe user'), (new ReflectionProperty('cloudpe', 'commands'))->getValue(new cloudpe()) ?? null);
        $this->reconcile();
        $module = $this->accountPageModule('9');
        $this->assertTrue($module->linkProposedUser(), implode('; ', $module->recordedErrors()));
        $this->assertSame('1009', ApiWrapper::$clients['24']['cloudpeid']);
        $this->assertArrayNotHasKey('cloudpeid', ApiWrapper::$clients['21'], 'the other account\'s proposal is not applied');
        $this->assertSame(array(array('id' => '24', 'cloudpeid' => '1009')), ApiWrapper::calls('setClientDetails'));
        $this->assertSame('CloudPeLink', HBRegistry::$db->accountLog('9')[0]['event']);
        $this->assertSame(array('5'), array_column($this->stored(), 'account_id'));

        $again = $this->accountPageModule('9');
        $this->assertFalse($again->linkProposedUser(), 'a second press has no proposal left');
        $this->assertStringContainsString('account #9 has no proposed link', $again->recordedErrors()[0]);
        $this->assertSame(1, ApiWrapper::count('setClientDetails'));
    }

    public function testTheAccountPagesButtonOnAStaleProposalLinksNothingAndSaysWhy()
    {
        $this->reconcile();
        ApiWrapper::$clients['21']['cloudpeid'] = '4242';
        $module = $this->accountPageModule('5');
        $this->assertFalse($module->linkProposedUser());
        $this->assertSame('4242', ApiWrapper::$clients['21']['cloudpeid']);
        $this->assertStringContainsString('was set meanwhile (to 4242)', implode("\n", $module->recordedInfos()));
        $this->assertStringContainsString('account #5 was not linked', $module->recordedErrors()[0]);
        $this->assertSame(0, ApiWrapper::count('setClientDetails'));
        $this->assertSame(array(), HBRegistry::$db->accountLog('5'));
    }

    public function testTheAccountPagesButtonWithoutAStaffMemberLinksNothing()
    {
        $this->reconcile();
        HbAdmin::$logged = HbAdmin::NONE;
        $module = $this->accountPageModule('5');
        $this->assertFalse($module->linkProposedUser());
        $this->assertStringContainsString('no staff member is logged in', $module->recordedErrors()[0]);
        $this->assertArrayNotHasKey('cloudpeid', ApiWrapper::$clients['21']);
    }

    public function testOnlyTheListedPairsAreAppliedAndAUidNotListedIsSkipped()
    {
        $this->reconcile();
        $module = $this->adminModule();
        $this->assertTrue($module->applyProposedLinks(array('9' => '1005', '6' => '123', '5' => '1005')));
        $this->assertSame(array(
            'Apply proposed links: 1 linked, 2 skipped',
            'linked #5: client #21 linked to CloudPe uid 1005 (ann@x.example)',
            'skipped #9: uid 1005 is not the one the reconciliation lists for it (1009)',
            'skipped #6: not among the links the App\'s last reconciliation proposes',
        ), $module->recordedInfos());
        $this->assertArrayNotHasKey('cloudpeid', ApiWrapper::$clients['24'], 'a link cannot be applied with another uid than listed');
        $this->assertSame('123', ApiWrapper::$clients['22']['cloudpeid']);
        $this->assertSame(array('9'), array_column($this->stored(), 'account_id'), 'the listing\'s proposal for #9 still holds');
        $this->assertSame(array(), HBRegistry::$db->accountLog('9'));
    }

    public function testAnApplyStoppedAfterTheFieldWasSetIsFinishedByTheNextOneWithItsLogEntry()
    {
        $this->reconcile();
        // What an apply killed between setClientDetails and its account-log entry leaves: the
        // client's field holds the proposed uid, the proposal is still stored, no log entry.
        ApiWrapper::$clients['21']['cloudpeid'] = '1005';
        $module = $this->adminModule();
        $this->assertTrue($module->applyProposedLinks(array('5' => '1005')));
        $this->assertSame(array(
            'Apply proposed links: 1 linked, 0 skipped',
            'linked #5: client #21 linked to CloudPe uid 1005 (ann@x.example)',
        ), $module->recordedInfos());
        $this->assertSame(0, ApiWrapper::count('setClientDetails'), 'the field is not written twice');
        $log = HBRegistry::$db->accountLog('5');
        $this->assertCount(1, $log);
        $this->assertSame(cloudpe_links::AUDIT_ACTION, $log[0]['action']);
        $this->assertSame(array('9'), array_column($this->stored(), 'account_id'));
    }

    public function testAProposalThatNoLongerHoldsIsSkippedWithItsReasonAndChangesNothing()
    {
        $this->reconcile(self::report('reconcile', array('reconciliation' => array(
            'counts' => array('accounts' => 4, 'remote_users' => 3, 'proposed_links' => 2),
            'proposed_links' => array(array('account_id' => 5, 'uid' => 1005, 'email' => 'ann@x.example'), array('account_id' => 9, 'uid' => 1009, 'email' => 'dee@x.example')),
        ))));
        cloudpe_links::store('4', array_merge(array_map(function ($r) {
            return array('account_id' => $r['account_id'], 'client_id' => $r['client_id'], 'uid' => $r['uid'], 'email' => $r['email']);
        }, $this->stored()), array(
            array('account_id' => '6', 'client_id' => '22', 'uid' => '1006', 'email' => 'bob@x.example'),
            array('account_id' => '7', 'client_id' => '23', 'uid' => '1007', 'email' => 'cy@x.example'),
        )));
        ApiWrapper::$clients['21']['cloudpeid'] = '555';                  // filled meanwhile
        unset(ApiWrapper::$accounts[3]);                                     // account 9 gone
        ApiWrapper::$accounts[1]['client_id'] = '23';                        // account 6 moved to another client
        ApiWrapper::$accounts[2]['server_id'] = '5';                         // account 7 moved to another App
        $module = $this->adminModule();
        $this->assertTrue($module->applyProposedLinks());
        $this->assertSame(array(
            'Apply proposed links: 0 linked, 4 skipped',
            'skipped #5: client #21\'s CloudPe id field (cloudpeid) was set meanwhile (to 555): nothing changed',
            'skipped #6: the account no longer belongs to client #22 (now client #23)',
            'skipped #7: the account is no longer on this App (now on App #5)',
            'skipped #9: the account no longer exists (getAccountDetails: Account not found)',
        ), $module->recordedInfos());
        $this->assertSame(0, ApiWrapper::count('setClientDetails'));
        $this->assertSame('555', ApiWrapper::$clients['21']['cloudpeid']);
        foreach (array('5', '6', '7', '9') as $id) {
            $this->assertSame(array(), HBRegistry::$db->accountLog($id));
        }
        $this->assertSame(array(), $this->stored(), 'a proposal that no longer holds is dropped');
    }

    public function testAFieldHostBillDoesNotTakeIsNotLinkedAndTheProposalIsKept()
    {
        $this->reconcile();
        ApiWrapper::$refuseClientEdits = 'Field validation failed';
        $module = $this->adminModule();
        $this->assertTrue($module->applyProposedLinks(array('5' => 1005)));
        $this->assertSame('skipped #5: not linked: setClientDetails refused it (Field validation failed)', $module->recordedInfos()[1]);
        ApiWrapper::$refuseClientEdits = null;
        ApiWrapper::$clientFieldCodes = array();
        $this->assertTrue($module->applyProposedLinks(array('5' => 1005)));
        $this->assertStringStartsWith('skipped #5: not linked: setClientDetails answered success, but the client has no field with code `cloudpeid`', $module->recordedInfos()[3], 'a field HostBill does not know');
        // A HostBill that answers success but keeps nothing: the read-back tells.
        $ignoring = new class() extends ApiWrapper {
            public function setClientDetails($params)
            {
                self::$calls[] = array('setClientDetails', $params);
                return array('success' => true, 'call' => 'setClientDetails');
            }
        };
        $result = cloudpe_links::apply($module, array('5' => '1005'), $ignoring, new cloudpe_apps($ignoring));
        $this->assertSame(array('5' => 'skipped'), array_map(function () {
            return 'skipped';
        }, $result['skipped']));
        $this->assertStringStartsWith('#5: not linked: setClientDetails answered success, but the client has no field with code `cloudpeid`', $result['skipped']['5']);
        $this->assertSame(array(), HBRegistry::$db->accountLog('5'));
        $this->assertSame(array('5', '9'), array_column($this->stored(), 'account_id'), 'kept for another try');
    }

    public function testTheCronNeverAppliesALink()
    {
        $this->reconcile();
        $this->reconcile();
        HbAdmin::$logged = HbAdmin::NONE;
        $controller = $this->controller(self::review());
        $controller->call_Monthly();
        $this->assertSame(array('email' => 'ann@x.example'), ApiWrapper::$clients['21'], 'the cron run leaves the client fields unchanged');
        $this->assertSame(array('email' => 'dee@x.example'), ApiWrapper::$clients['24']);
        $this->assertSame(0, ApiWrapper::count('setClientDetails'));
        $module = $this->adminModule();
        $this->assertFalse($module->applyProposedLinks(), 'without a staff member the action refuses');
        $this->assertSame(array('CloudPe module: Apply proposed links: it is an admin\'s action and no staff member is logged in (HostBill\'s cron never applies a proposed link)'), $module->recordedErrors());
        $this->assertSame(0, ApiWrapper::count('setClientDetails'));
        $this->assertCount(2, $this->stored());
    }

    public function testAnAppOfAModuleWithoutTheLinksTableSaysTheProposalsWereNotKept()
    {
        HBRegistry::$db->exec('DROP TABLE `' . cloudpe_links::TABLE . '`');
        $output = $this->reconcile();
        $this->assertStringEndsWith('; the proposed links could not be kept for Apply proposed links (see the system log)', $output);
        $this->assertStringContainsString('reconciliation App #4: the proposed links could not be kept for Apply proposed links: HostBill\'s database refused', HbLog::text());
    }

    // ---- group drift in the daily sync ----

    /** The daily sync of App 4 answering `$decisions`; returns its output. */
    private function daily(array $decisions)
    {
        $this->appRow();
        HbAdmin::$logged = HbAdmin::NONE;
        $report = self::report('sync', array('dry_run' => false, 'decisions' => $decisions, 'summary' => array('requests' => 1, 'elapsed_ms' => 10)));
        return $this->controller($report)->call_Daily();
    }

    public function testTheDailySyncReportsGroupDriftAndChangesNothing()
    {
        $output = $this->daily(array(
            array('account_id' => '5', 'decision' => 'unchanged', 'facts' => array('cloudpe-uid' => '1005', 'cloudpe-group' => 'trial<i>')),
            array('account_id' => '6', 'decision' => 'unchanged', 'facts' => array('cloudpe-uid' => '123', 'cloudpe-group' => 'premium')),
            array('account_id' => '7', 'decision' => 'unchanged', 'facts' => array('cloudpe-uid' => '124', 'cloudpe-group' => 'other')),
        ));
        $this->assertNotContains('--omit-unchanged-facts', $this->sentArgs('app4'), 'a product names a group: the facts are needed');
        $this->assertSame('App #4 "CloudPe EU": 3 accounts read, 0 changed, 3 unchanged, 0 skipped, 0 errors; 1 CloudPe requests in 0.0 s; 1 account in another CloudPe group than their product\'s: #5 (premium → trial&lt;i&gt;) (nothing changed)', $output);
        $this->assertStringContainsString('sync App #4: 1 account in another CloudPe group than their product\'s: #5 (premium → trial&lt;i&gt;) (nothing changed)', HbLog::text());
        $this->assertSame(array(), ApiWrapper::$edits);
        $this->assertSame(array(), HBRegistry::$db->accountLog('5'));
    }

    public function testTheDriftListIsBoundedAndAccountsWithoutProductsFromTheListingAreFound()
    {
        // A HostBill whose getAccounts rows carry no product_id: the products' listings tell them.
        $accounts = array();
        $decisions = array();
        for ($i = 1; $i <= 8; $i++) {
            $accounts[] = array('id' => (string) (100 + $i), 'client_id' => '21', 'server_id' => '4', 'status' => 'Active', 'product_id' => '3');
            $decisions[] = array('account_id' => (string) (100 + $i), 'decision' => $i === 8 ? 'change' : 'unchanged', 'from' => 'Active', 'to' => 'Suspended', 'facts' => array('cloudpe-group' => $i === 7 ? 'premium' : ''));
        }
        ApiWrapper::$accounts = $accounts;
        $listed = new class() extends ApiWrapper {
            public function getAccounts($params)
            {
                $reply = parent::getAccounts($params);
                if (!isset($params['filter']['product_id'])) {
                    foreach ($reply['accounts'] as $i => $row) {
                        unset($reply['accounts'][$i]['product_id']);
                    }
                }
                return $reply;
            }
        };
        $this->appRow();
        HbAdmin::$logged = HbAdmin::NONE;
        $report = self::report('sync', array('dry_run' => false, 'decisions' => $decisions, 'summary' => array('requests' => 1, 'elapsed_ms' => 10)));
        $output = cloudpe_sync::daily($this->controller($report)->module, false, new cloudpe_apps($listed), $listed);
        $this->assertStringContainsString('; 7 accounts in another CloudPe group than their product\'s: #101 (premium → (none)), #102 (premium → (none)), #103 (premium → (none)), #104 (premium → (none)), #105 (premium → (none)), +2 more (nothing changed)', $output);
        $this->assertStringContainsString('1 changed', $output, 'a change is still written; drift only reported');
        $this->assertSame(array(array('id' => '108', 'status' => 'Suspended')), ApiWrapper::$edits);
        $filters = array_column(ApiWrapper::calls('getAccounts'), 'filter');
        $this->assertContains(array('server_id' => '4', 'product_id' => '3'), $filters);
        $this->assertContains(array('server_id' => '4', 'product_id' => '4'), $filters);
        $this->assertNotContains(array('server_id' => '4', 'product_id' => '8'), $filters, 'another module\'s product is not read');
    }

    public function testFactsAreRequestedOnlyWhenAProductNamesAGroup()
    {
        HBRegistry::$db->exec('UPDATE `hb_products_modules` SET `options` = \'' . serialize(array('option1' => '')) . '\' WHERE `module` = 7');
        $output = $this->daily(array(array('account_id' => '5', 'decision' => 'unchanged'), array('account_id' => '6', 'decision' => 'unchanged'), array('account_id' => '7', 'decision' => 'unchanged')));
        $this->assertContains('--omit-unchanged-facts', $this->sentArgs('app4'), 'no product names a group: unchanged decisions carry no facts');
        $this->assertStringNotContainsString('CloudPe group', $output);
    }

    public function testUnreadableProductOptionsAreAWarningNotAFailure()
    {
        HBRegistry::$db->exec("UPDATE `hb_products_modules` SET `options` = 'garbage' WHERE `product_id` = 3");
        $output = $this->daily(array(array('account_id' => '5', 'decision' => 'unchanged'), array('account_id' => '6', 'decision' => 'unchanged'), array('account_id' => '7', 'decision' => 'unchanged')));
        $this->assertStringContainsString('3 unchanged', $output);
        $this->assertStringContainsString("; warning: product #3's module options (hb_products_modules.options) are neither a serialized array nor a JSON object: save the product's Connect with App tab again", $output);
        $this->assertContains('--omit-unchanged-facts', $this->sentArgs('app4'));
    }

    public function testOptionsTheHostWouldRefuseAreLeftOutAndNamedNeverFailingTheApp()
    {
        $options = array('big' => str_repeat('x', 4097), '' => 'nameless');
        for ($i = 0; $i < 70; $i++) {
            $options["o{$i}"] = 'v';
        }
        $options['option1'] = 'gold'; // the CloudPe group, declared last: still sent
        HBRegistry::$db->exec('UPDATE `hb_products_modules` SET `options` = ' . HBRegistry::$db->quote(serialize($options)) . ' WHERE `product_id` = 4');
        $output = $this->reconcile(self::report('reconcile', array('reconciliation' => array('counts' => array('accounts' => 4, 'remote_users' => 3)))));
        $product = $this->sentRequest('app4')['accounts'][2]['product'];
        $this->assertCount(64, $product);
        $this->assertSame('gold', $product['CloudPe group']);
        $this->assertArrayNotHasKey('big', $product);
        $this->assertStringContainsString('; warning: product #4: option "big", whose value is longer than 4096 bytes not sent to the module; warning: product #4: an option without a name not sent to the module; warning: product #4: options past the first 64 not sent to the module', $output);
    }

    public function testProductOptionsAreReadByNameAsSerializedOrJson()
    {
        HBRegistry::$db->exec("UPDATE `hb_products_modules` SET `options` = '{\"CloudPe group\":\" gold \",\"option9\":\"x\"}' WHERE `product_id` = 4");
        $unreadable = array();
        $products = (new cloudpe_apps())->productOptions(array('option1' => 'CloudPe group'), $unreadable);
        $this->assertSame(array('3' => array('CloudPe group' => 'premium'), '4' => array('CloudPe group' => 'gold', 'option9' => 'x')), $products);
        $this->assertSame(array(), $unreadable);
    }
}
