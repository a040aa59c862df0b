<?php

/**
 * Issue 22, exactly once: the import runs in a PHP process of its own (fixtures/usage-import-child.php)
 * against the same MariaDB, is KILLED (SIGKILL, CLOUDPE_USAGE_FAILPOINT) at each step of its
 * write path, then runs again (and once more): HostBill's usage rows must then be exactly the
 * expected hours, one by one: the same hours, the same amounts, none twice, none missing.
 */
class UsageKillTest extends UsageTestCase
{
    use UsageChildProcess;

    /**
     * @dataProvider killPoints
     */
    public function testAKillAtAnyStepNeitherLosesNorDoublesAnHour($failpoint, $billedWhenKilled)
    {
        $result = $this->child($failpoint);
        $this->assertSame(9, $result['termsig'], "the import was killed at {$failpoint}: " . $result['stdout'] . $result['stderr']);
        $this->assertSame($billedWhenKilled, count(self::billed()), 'what HostBill had when the import died');

        $result = $this->child(null);
        $this->assertSame(0, $result['exit'], $result['stdout'] . $result['stderr']);
        $this->assertSame(self::expectedBilled(), self::billed(), 'after the next run: every hour once');
        $this->assertSame(array('101' => array('2026-12-06 12:00:00', null), '102' => array('2026-12-06 12:00:00', null)), self::cursors());
        foreach (self::ledger() as $row) {
            $this->assertSame('pushed', $row[3]);
        }
        $this->assertStringNotContainsString(self::TOKEN, $result['stdout'] . $result['stderr']);

        $this->child(null);
        $this->assertSame(self::expectedBilled(), self::billed(), 'and a third run changes nothing');
    }

    public function killPoints()
    {
        // #101's billable hours are 20:00 and 10:00 (pushes 1 and 2), #102's 11:00 (push 3).
        return array(
            'after the host answered, before the ledger' => array('before-ledger', 0),
            'after the ledger rows, before any push' => array('after-ledger', 0),
            'before the second push (attempted, not sent)' => array('before-push:2', 1),
            'after the first push, before it is marked' => array('after-push:1', 1),
            'between two pushes' => array('after-mark:1', 1),
            'after the third push, before it is marked' => array('after-push:3', 3),
            'after the pushes, before the cursor' => array('before-cursor:1', 2),
            'during the cursor write, before its commit' => array('in-cursor:1', 2),
            'second account, before its cursor' => array('before-cursor:2', 3),
        );
    }

    /**
     * Killed between marking an hour attempted and calling meteredAddUsage, on the account's first
     * pushed hour: meteredGetUsage's listing does not reach back to it, so the next run cannot tell
     * whether HostBill has it. It is held (not lost: its ledger row and the cursor stay behind it;
     * not billed twice: never pushed again on a guess) until the admin settles it.
     */
    public function testAKillBeforeAnAccountsFirstPushHoldsThatHourForTheAdmin()
    {
        $result = $this->child('before-push:1');
        $this->assertSame(9, $result['termsig']);
        $this->assertSame(array(), self::billed());

        $result = $this->child(null);
        $this->assertStringContainsString('account #101: the usage of 2026-12-05T20:00:00Z was being pushed when an earlier import stopped', $result['stdout']);
        $this->assertSame(array(self::expectedBilled()[2]), self::billed(), '#102 is billed; #101 is held, not guessed');
        $this->assertSame('unconfirmed', self::ledger()[0][3]);
        $this->assertArrayNotHasKey('101', self::cursors());

        // The admin's step (docs/usage.md "An unconfirmed hour"): HostBill does not have it.
        HBRegistry::$db->exec("UPDATE hb_cloudpe_usage_ledger SET state = 'pending', attempted_at = NULL WHERE account_id = 101 AND hour = '2026-12-05 20:00:00'");
        $this->child(null);
        $billed = self::billed();
        usort($billed, function ($a, $b) {
            return strcmp($a[0] . $a[1], $b[0] . $b[1]);
        });
        $this->assertSame(self::expectedBilled(), $billed);
    }

    /** A host deadline: the accounts read are imported; a kill on top changes nothing of that. */
    public function testADeadlineThenAKillThenAFullRunBillsEveryHourOnce()
    {
        $this->plan['stop_after'] = 1;
        $this->plan['error'] = array('kind' => 'timeout', 'code' => null, 'message' => 'the module did not finish before the deadline', 'limit' => array('name' => 'deadline', 'value' => '1602 s'));
        $this->plan['exit'] = 3;
        $result = $this->child(null);
        $this->assertStringContainsString('stopped by the deadline limit', $result['stdout']);
        $this->assertSame(array_slice(self::expectedBilled(), 0, 2), self::billed());
        $this->assertSame(array('101' => array('2026-12-06 12:00:00', null)), self::cursors());

        unset($this->plan['stop_after'], $this->plan['error'], $this->plan['exit']);
        $result = $this->child('after-push:1');
        $this->assertSame(9, $result['termsig'], 'killed after #102\'s push');
        $this->child(null);
        $this->assertSame(self::expectedBilled(), self::billed());
    }

    /** Runs the import in a child PHP process through the fake host (see UsageChildProcess). */
    private function child($failpoint)
    {
        $host = array('binary' => __DIR__ . '/fixtures/fake-usage-host', 'component' => $this->dir . '/module.wasm', 'secrets' => array(self::TOKEN), 'env' => $this->hostEnv());
        return $this->runImportChild($host, $this->now, $failpoint, $this->dir);
    }
}
