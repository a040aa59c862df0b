<?php

use PHPUnit\Framework\TestCase;

/**
 * Base of the end-to-end tests: the PHP module drives the real hostbill-module-host, which runs the
 * real CloudPe component against the simulated CloudPe (`cloudpe-sim`, one per test class). Needs
 * HOSTBILL_MODULE_HOST_BIN, CLOUDPE_COMPONENT and CLOUDPE_SIM_BIN (set by `cargo xtask test`), plus
 * whatever requiredEnv() adds; skipped without them. Apps, accounts and clients live in the
 * HostBill doubles, as HostBill stores them.
 */
abstract class RealHostTestCase extends TestCase
{
    const SESSION = 'php-e2e-session/token"0b7e';
    const ACCOUNTS = 300;
    const FIRST_UID = 1000;

    /** @var resource|null */
    protected static $sim;
    /** @var string */
    protected static $url;
    /** @var string|null a private scratch folder (the host refuses shared cache folders) */
    protected static $scratch;

    /** The environment variables the class needs. */
    protected static function requiredEnv()
    {
        return array('HOSTBILL_MODULE_HOST_BIN', 'CLOUDPE_COMPONENT', 'CLOUDPE_SIM_BIN');
    }

    /** The simulator's accounts, as its arguments (default: ACCOUNTS generated from FIRST_UID). */
    protected static function simAccounts()
    {
        return array('--generate', (string) self::ACCOUNTS, '--first-uid', (string) self::FIRST_UID);
    }

    public static function setUpBeforeClass(): void
    {
        foreach (static::requiredEnv() as $name) {
            if (!getenv($name)) {
                self::markTestSkipped("{$name} is not set: run the PHP tests through `cargo xtask test`");
            }
        }
        self::$scratch = sys_get_temp_dir() . '/cloudpe-php-e2e-' . getmypid() . '-' . bin2hex(random_bytes(6));
        mkdir(self::$scratch, 0700);
        $command = array_merge(array(getenv('CLOUDPE_SIM_BIN')), static::simAccounts(), array('--session', self::SESSION));
        $pipes = array();
        self::$sim = proc_open($command, array(1 => array('pipe', 'w'), 2 => array('file', '/dev/null', 'w')), $pipes);
        $line = fgets($pipes[1]);
        if (!preg_match('#^listening on (http://127\.0\.0\.1:\d+)#', (string) $line, $m)) {
            throw new RuntimeException('cloudpe-sim did not start: ' . var_export($line, true));
        }
        self::$url = $m[1];
    }

    public static function tearDownAfterClass(): void
    {
        if (is_resource(self::$sim)) {
            proc_terminate(self::$sim);
            proc_close(self::$sim);
        }
        self::$sim = null;
        if (self::$scratch !== null && is_dir(self::$scratch)) {
            exec('rm -rf ' . escapeshellarg(self::$scratch));
        }
        self::$scratch = null;
    }

    protected function setUp(): void
    {
        HostBillDoubles::reset();
        // The module's own tables, as its install()/upgrade() creates them.
        (new cloudpe_retries())->createTables();
        cloudpe_links::createTables();
    }

    /** The compile cache of these tests. */
    protected static function cache()
    {
        return self::$scratch . '/cache';
    }

    /** Adds App `$id` pointing at the simulator, with `$custom` settings, and returns its row. */
    protected static function app($id, array $custom = array(), $session = self::SESSION)
    {
        HbApps::add($id, "CloudPe sim {$id}", array('host' => '127.0.0.1', 'status_url' => self::$url, 'field1' => 'cluster', 'field2' => $session, 'secure' => '0'), $custom);
        $model = new HbServersModel();
        return $model->getServerDetails($id);
    }

    /** The simulated CloudPe's record of `$uid`, read over its API. */
    protected function remote($uid)
    {
        $query = http_build_query(array('appid' => 'cluster', 'session' => self::SESSION, 'filterField' => 'uid', 'filterValue' => $uid));
        $reply = json_decode(file_get_contents(self::$url . '/1.0/billing/account/rest/getaccounts?' . $query), true);
        foreach ($reply['array'] as $account) {
            if ($account['uid'] === $uid) {
                return $account;
            }
        }
        return null;
    }

    protected function assertNoSession($text)
    {
        foreach (array(self::SESSION, substr(json_encode(self::SESSION), 1, -1), rawurlencode(self::SESSION), '0b7e') as $form) {
            $this->assertStringNotContainsString($form, $text);
        }
    }
}
