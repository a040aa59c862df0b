<?php

/**
 * Issue 24 item 3: CloudPe's texts (a user's email, login and group, its error excerpts) reach the
 * admin's pages HTML-escaped, and no text the module writes anywhere carries control characters
 * or ANSI escapes: the account's details, its log, the system log, the admin's messages, tickets,
 * the cron's output (the sync's and the reconciliation's lines).
 */
class HostileTextTest extends ScriptedHostTestCase
{
    const EMAIL = '<img src=x onerror=alert(1)>@evil.example';
    const GROUP = '<script>alert("group")</script>';
    const EMAIL_SHOWN = '&lt;img src=x onerror=alert(1)&gt;@evil.example';
    const GROUP_SHOWN = '&lt;script&gt;alert(&quot;group&quot;)&lt;/script&gt;';
    /** An error excerpt with markup, a terminal title, a screen clear, a bell and a bidi override. */
    const ERROR = "user <b onmouseover=alert(1)>x</b> not found\e]0;pwned\x07\e[2J\x00 \u{202E}gnp.exe";
    const ERROR_SHOWN = 'user &lt;b onmouseover=alert(1)&gt;x&lt;/b&gt; not found gnp.exe';

    private static function facts()
    {
        return array(
            'cloudpe-uid' => '1234', 'cloudpe-email' => self::EMAIL, 'cloudpe-status' => '2 (inactive)',
            'cloudpe-login' => "\e[31menabled\e[0m", 'cloudpe-group' => self::GROUP, 'cloudpe-created' => '2024-03-01 10:00:00',
        );
    }

    /** Asserts `$text` holds no markup of CloudPe's and no control character or escape. */
    private function assertClean($text)
    {
        foreach (array('<img', '<script', '<b ', '</b>', "\e", "\x07", "\x00", "\u{202E}") as $bad) {
            $this->assertStringNotContainsString($bad, $text);
        }
    }

    /** Every text the module wrote: system log, admin messages, the tables, tickets, notes. */
    private function everything(cloudpe $module, $extra = '')
    {
        return HbLog::text() . "\n" . implode("\n", $module->recordedErrors()) . "\n" . implode("\n", $module->recordedInfos())
            . "\n" . print_r(HBRegistry::$db->tables, true) . print_r(ApiWrapper::$tickets, true) . print_r(ApiWrapper::$notes, true)
            . implode("\n", $module->detailValues()) . "\n" . $extra;
    }

    public function testTheAccountPageShowsAUsersMarkupAsText()
    {
        $this->answer('sync', array('decisions' => array(array('account_id' => '101', 'decision' => 'change', 'from' => 'Active', 'to' => 'Suspended', 'facts' => self::facts()))));
        $module = $this->scripted();
        $this->assertSame(array('suspended' => 1), $module->getSynchInfo());
        $values = $module->detailValues();
        $this->assertSame(self::EMAIL_SHOWN, $values['cloudpe_email']);
        $this->assertSame(self::GROUP_SHOWN, $values['cloudpe_group']);
        $this->assertSame('enabled', $values['cloudpe_login']);
        $row = HBRegistry::$db->accountLog('101')[0];
        $this->assertContains(array('name' => 'cloudpe-email', 'from' => '', 'to' => self::EMAIL_SHOWN), $row['change']['data']);
        $this->assertContains(array('name' => 'cloudpe-group', 'from' => '', 'to' => self::GROUP_SHOWN), $row['change']['data']);
        $this->assertClean($this->everything($module));
    }

    public function testAFailedActionShowsCloudpesErrorAsTextEverywhere()
    {
        $this->answer('suspend', array('error' => array('kind' => 'not-found', 'message' => self::ERROR, 'code' => null)), 1);
        $module = $this->scripted();
        $this->assertFalse($module->Suspend());
        $this->assertSame(array(self::ERROR_SHOWN), $module->recordedErrors());
        $this->assertSame(self::ERROR_SHOWN, HBRegistry::$db->accountLog('101')[0]['error']);
        $this->assertContains(array('error', 'suspend failed (not-found): ' . self::ERROR_SHOWN, 'CloudPe Module'), HbLog::$lines);
        $this->assertClean($this->everything($module));
    }

    public function testTheTicketOfARetryThatGaveUpShowsTheErrorAsText()
    {
        HbAdmin::$logged = HbAdmin::NONE;
        ApiWrapper::$accounts = array(array('id' => '101', 'client_id' => '11', 'server_id' => '4', 'status' => 'Active'));
        $module = $this->scripted();
        $this->answer('suspend', array('error' => array('kind' => 'transport', 'message' => 'connection refused', 'code' => null)), 1);
        $this->assertFalse($module->Suspend());
        $this->now += 300;
        $this->answer('suspend', array('error' => array('kind' => 'not-found', 'message' => self::ERROR, 'code' => null)), 1);
        $output = cloudpe_retries::everyRun($module, null, null, $this->queue());
        $this->assertStringContainsString(self::ERROR_SHOWN, $output);
        $this->assertCount(1, ApiWrapper::$tickets);
        $this->assertStringContainsString(self::ERROR_SHOWN, ApiWrapper::$tickets[0]['body']);
        $this->assertClean($this->everything($module, $output));
    }

    public function testTheDailySyncLogsAnAccountsErrorAsText()
    {
        HbAdmin::$logged = HbAdmin::NONE;
        ApiWrapper::$accounts = array(array('id' => '1', 'client_id' => '11', 'server_id' => '4', 'status' => 'Active'), array('id' => '2', 'client_id' => '11', 'server_id' => '4', 'status' => 'Active'));
        $module = $this->scripted();
        $this->answer('sync', array('dry_run' => false, 'decisions' => array(
            array('account_id' => '1', 'decision' => 'change', 'from' => 'Active', 'to' => 'Suspended', 'facts' => self::facts()),
            array('account_id' => '2', 'decision' => 'error', 'error' => array('kind' => 'remote-api', 'message' => self::ERROR)),
        )));
        $result = (new cloudpe_sync($module))->run();
        $this->assertSame('account #2: ' . self::ERROR_SHOWN, $result['first_error']);
        $this->assertContains(array('name' => 'cloudpe-group', 'from' => '', 'to' => self::GROUP_SHOWN), HBRegistry::$db->accountLog('1')[0]['change']['data']);
        $this->assertClean($this->everything($module, print_r($result, true)));
    }

    public function testTheReconciliationLineShowsCloudpesEmailsAsText()
    {
        $this->appRow();
        ApiWrapper::$accounts = array(array('id' => '7', 'client_id' => '23', 'server_id' => '4', 'status' => 'Active'));
        ApiWrapper::$clients = array('23' => array('email' => 'c@x.example', 'cloudpeid' => '124'));
        $report = self::report('reconcile', array('reconciliation' => array(
            'counts' => array('accounts' => 1, 'remote_users' => 2, 'unlinked_users' => 1, 'email_differences' => 1),
            'unlinked_users' => array(array('uid' => 1, 'email' => self::EMAIL)),
            'email_differences' => array(array('account_id' => 7, 'uid' => 124, 'hostbill_email' => 'c@x.example', 'remote_email' => self::GROUP)),
            'requests' => 1,
        ), 'warnings' => array("a warning \e[1mloud\e[0m")));
        $module = new cloudpe();
        $module->useHostFactory(function ($connection, $timeout) use ($report) {
            return $this->fakeHost('report', $report, 0, $timeout, 'app' . $connection['id']);
        });
        $controller = new cloudpe_controller();
        $controller->module = $module;
        $line = $controller->call_Monthly();
        $this->assertStringContainsString('uid 1 ' . self::EMAIL_SHOWN, $line);
        $this->assertStringContainsString('CloudPe ' . self::GROUP_SHOWN, $line);
        $this->assertStringContainsString('warning: a warning loud', $line, "the host's own warnings are plain");
        $this->assertClean($this->everything($module, $line));
    }

    public function testAnOutcomeAndLogRecordsLoseTheirEscapesAndATokenSplitByOneIsStillRedacted()
    {
        $split = substr(self::TOKEN, 0, 8) . "\e[0m" . substr(self::TOKEN, 8);
        $this->answer('unsuspend', array('outcome' => array('message' => "unsuspended \e[32m<u>ok</u>\e[0m"), 'warnings' => array("\e[33mslow\e[0m"), 'logs' => array(
            array('level' => 'info', 'message' => "echoed session={$split}\r\x08"),
        )));
        $module = $this->scripted();
        $this->assertTrue($module->Unsuspend(), implode('; ', $module->recordedErrors()));
        $this->assertSame(array('unsuspended &lt;u&gt;ok&lt;/u&gt;', 'Warning: slow'), $module->recordedInfos());
        $this->assertContains(array('system', 'echoed session=[REDACTED]', 'CloudPe Module'), HbLog::$lines);
        $this->assertClean($this->everything($module));
        $this->assertNoToken($module);
    }
}
