<?php

use PHPUnit\Framework\TestCase;

/**
 * Base of the unit tests: a fake host binary whose behaviour each test sets, a scratch folder,
 * and fresh doubles.
 */
abstract class FakeHostTestCase extends TestCase
{
    const TOKEN = 'php-unit-session-token-61f0c2';

    /** @var string */
    protected $dir;

    protected function setUp(): void
    {
        ApiWrapper::reset();
        HbLog::$lines = array();
        $this->dir = sys_get_temp_dir() . '/cloudpe-php-' . getmypid() . '-' . bin2hex(random_bytes(4));
        mkdir($this->dir, 0700, true);
        file_put_contents($this->dir . '/module.wasm', 'not used by the fake host');
        foreach (array('FAKE_HOST_MODE', 'FAKE_HOST_REPORT', 'FAKE_HOST_EXIT', 'FAKE_HOST_ECHO') as $name) {
            putenv($name);
        }
        putenv('FAKE_HOST_STDIN=' . $this->dir . '/stdin.json');
        putenv('FAKE_HOST_ARGS=' . $this->dir . '/args.txt');
    }

    protected function tearDown(): void
    {
        foreach (glob($this->dir . '/*') ?: array() as $file) {
            @unlink($file);
        }
        @rmdir($this->dir);
    }

    /** The fake host, answering `$report` with exit code `$exit` (or another `$mode`). */
    protected function fakeHost($mode = 'report', array $report = array(), $exit = 0, $timeout = 10)
    {
        putenv('FAKE_HOST_MODE=' . $mode);
        putenv('FAKE_HOST_EXIT=' . $exit);
        file_put_contents($this->dir . '/report.json', json_encode($report));
        putenv('FAKE_HOST_REPORT=' . $this->dir . '/report.json');
        return new cloudpe_host(__DIR__ . '/fixtures/fake-host', $this->dir . '/module.wasm', $timeout, array(self::TOKEN));
    }

    /** A module connected to a typical App, using `$host`. */
    protected function module(cloudpe_host $host, array $connect = array())
    {
        $module = new cloudpe();
        $module->connect($connect + array(
            'id' => 4,
            'host' => 'api.cloudpe.example.com',
            'status_url' => 'https://api.cloudpe.example.com',
            'field1' => 'cluster',
            'field2' => self::TOKEN,
        ));
        $module->useHost($host);
        $module->account_details = array('id' => 101, 'client_id' => 11, 'server_id' => 4, 'status' => 'Active');
        ApiWrapper::$clients[11] = array('firstname' => 'Ann', 'cloudpeid' => '1234');
        return $module;
    }

    /** The JSON request the (fake) host received. */
    protected function sentRequest()
    {
        return json_decode(file_get_contents($this->dir . '/stdin.json'), true);
    }

    /** The arguments the (fake) host received. */
    protected function sentArgs()
    {
        return file($this->dir . '/args.txt', FILE_IGNORE_NEW_LINES);
    }

    /** A report as the host prints it. */
    protected static function report($operation, array $fields, array $logs = array())
    {
        return array('ok' => !isset($fields['error']), 'operation' => $operation) + $fields + array('logs' => $logs);
    }

    /** Asserts the session token appears in no log line and no admin message. */
    protected function assertNoToken(cloudpe $module)
    {
        $everything = HbLog::text() . implode("\n", $module->recordedErrors()) . implode("\n", $module->recordedInfos());
        $this->assertStringNotContainsString(self::TOKEN, $everything);
    }
}
