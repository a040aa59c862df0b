<?php

use PHPUnit\Framework\TestCase;

/**
 * Base of the unit tests: fake host binaries whose behaviour each test sets (through the child's
 * environment, the only channel: the runner passes nothing of PHP's own), a scratch folder, and
 * fresh doubles.
 */
abstract class FakeHostTestCase extends TestCase
{
    /** A token with `/`, `"` and `\`: its JSON-escaped and URL-encoded forms differ from it. */
    const TOKEN = 'php-unit/session"token\\61f0c2';

    /** @var string */
    protected $dir;
    /** @var string|null FAKE_HOST_ECHO of the next fake hosts */
    protected $echo = null;
    /**
     * @var bool whether setUp installs the module's own tables. Each test's database starts as
     * HostBill's alone (HostBillDoubles::reset); false: the test installs them itself, if at all.
     */
    protected $moduleTables = true;

    protected function setUp(): void
    {
        HostBillDoubles::reset();
        $this->echo = null;
        if ($this->moduleTables) {
            self::installModuleTables();
        }
        $this->dir = sys_get_temp_dir() . '/cloudpe-php-' . getmypid() . '-' . bin2hex(random_bytes(4));
        mkdir($this->dir, 0700, true);
        file_put_contents($this->dir . '/module.wasm', 'not used by the fake host');
        // The runner checks that the trusted keys exist before it starts a host (the fake one
        // never reads them).
        mkdir($this->dir . '/keys', 0700);
        file_put_contents($this->dir . '/keys/vendor.pub', "-----BEGIN PUBLIC KEY-----\nnot read by the fake host\n-----END PUBLIC KEY-----\n");
    }

    protected function tearDown(): void
    {
        self::removeTree($this->dir);
    }

    /**
     * The module's own tables (hb_cloudpe_retries, hb_cloudpe_outages, the usage ledger, hb_cloudpe_link_proposals) in HBRegistry::db(), made by
     * the code its install() and upgrade() run. A new HostBillTestDb holds HostBill's tables only.
     */
    protected static function installModuleTables()
    {
        (new cloudpe_retries())->createTables();
        cloudpe_usage::createTables();
        cloudpe_links::createTables();
    }

    /** Deletes `$path` and everything under it. */
    protected static function removeTree($path)
    {
        if (is_dir($path) && !is_link($path)) {
            foreach (scandir($path) ?: array() as $entry) {
                if ($entry !== '.' && $entry !== '..') {
                    self::removeTree($path . '/' . $entry);
                }
            }
            @rmdir($path);
        } elseif (file_exists($path) || is_link($path)) {
            @unlink($path);
        }
    }

    /**
     * The fake host, answering `$report` with exit code `$exit` (or another `$mode`). Each `$tag`
     * keeps its own stdin/args/env files. `$info`, when given, is its answer to `info` (run after a
     * successful Test Connection), which keeps its own files (`…-{$tag}.json.info` etc.).
     */
    public function fakeHost($mode = 'report', array $report = array(), $exit = 0, $timeout = 10, $tag = 'host', $info = null)
    {
        // Each report the host prints ends with a newline.
        file_put_contents("{$this->dir}/report-{$tag}.json", json_encode($report) . "\n");
        if ($info !== null) {
            file_put_contents("{$this->dir}/report-{$tag}.json.info", json_encode($info) . "\n");
        } elseif (file_exists("{$this->dir}/report-{$tag}.json.info")) {
            unlink("{$this->dir}/report-{$tag}.json.info");
        }
        $env = array(
            'FAKE_HOST_MODE' => $mode,
            'FAKE_HOST_EXIT' => (string) $exit,
            'FAKE_HOST_REPORT' => "{$this->dir}/report-{$tag}.json",
            'FAKE_HOST_STDIN' => "{$this->dir}/stdin-{$tag}.json",
            'FAKE_HOST_ARGS' => "{$this->dir}/args-{$tag}.txt",
            'FAKE_HOST_ENV_FILE' => "{$this->dir}/env-{$tag}.txt",
        );
        if ($this->echo !== null) {
            $env['FAKE_HOST_ECHO'] = $this->echo;
        }
        return new cloudpe_host(__DIR__ . '/fixtures/fake-host', $this->dir . '/module.wasm', $timeout, array(self::TOKEN), null, $env);
    }

    /** A connect() row as HostBill's Servers model hands it: hb_servers columns, strings, `custom` unserialized. */
    protected static function appRow(array $fields = array(), $custom = array())
    {
        HbApps::add(isset($fields['id']) ? $fields['id'] : '4', 'CloudPe EU', array_diff_key($fields, array('id' => 1)) + array(
            'host' => 'api.cloudpe.example.com',
            'status_url' => 'https://api.cloudpe.example.com',
            'field1' => 'cluster',
            'field2' => self::TOKEN,
        ), $custom);
        $model = new HbServersModel();
        return $model->getServerDetails(isset($fields['id']) ? $fields['id'] : '4');
    }

    /** A module connected to a typical App, using `$host`. */
    protected function module(cloudpe_host $host, array $fields = array(), $custom = array())
    {
        $module = new cloudpe();
        $module->connect(self::appRow($fields, $custom));
        $module->useHost($host);
        $module->setAccount(array('id' => '101', 'client_id' => '11', 'server_id' => '4', 'status' => 'Active', 'product_id' => '3', 'domain' => ''));
        ApiWrapper::$clients['11'] = array('firstname' => 'Ann', 'cloudpeid' => '1234');
        return $module;
    }

    /** The JSON request the (fake) host received. */
    protected function sentRequest($tag = 'host')
    {
        return json_decode(file_get_contents("{$this->dir}/stdin-{$tag}.json"), true);
    }

    /** The arguments the (fake) host received. */
    protected function sentArgs($tag = 'host')
    {
        return file("{$this->dir}/args-{$tag}.txt", FILE_IGNORE_NEW_LINES);
    }

    /** The environment the (fake) host ran with, name => value. */
    protected function sentEnv($tag = 'host')
    {
        $env = array();
        foreach (file("{$this->dir}/env-{$tag}.txt", FILE_IGNORE_NEW_LINES) as $line) {
            $parts = explode('=', $line, 2);
            if (count($parts) === 2) {
                $env[$parts[0]] = $parts[1];
            }
        }
        return $env;
    }

    /** The value following `$flag` in the host's arguments, or null. */
    protected function flag($flag, $tag = 'host')
    {
        $args = $this->sentArgs($tag);
        $i = array_search($flag, $args, true);
        return ($i === false || !isset($args[$i + 1])) ? null : $args[$i + 1];
    }

    /**
     * A report as the host prints it, in its order (host/src/report): `operation`, `module`, a
     * sync's `decisions`, then `ok` and the rest, `logs` and `meter` last.
     */
    protected static function report($operation, array $fields, array $logs = array())
    {
        $head = array('operation' => $operation);
        foreach (array('module', 'decisions') as $name) {
            if (array_key_exists($name, $fields)) {
                $head[$name] = $fields[$name];
            }
        }
        $tail = array_key_exists('meter', $fields) ? array('meter' => $fields['meter']) : array();
        return $head + array('ok' => !isset($fields['error'])) + array_diff_key($fields, $head, $tail) + array('logs' => $logs) + $tail;
    }

    /** Asserts the session token appears in no log line and no admin message, in any encoding. */
    protected function assertNoToken(cloudpe $module, $extra = '')
    {
        $everything = HbLog::text() . implode("\n", $module->recordedErrors()) . implode("\n", $module->recordedInfos()) . $extra;
        foreach (array(self::TOKEN, 'session"token', 'session\\"token', 'php-unit\\/session', urlencode(self::TOKEN), rawurlencode(self::TOKEN), '61f0c2') as $form) {
            $this->assertStringNotContainsString($form, $everything);
        }
    }
}
