<?php

/** cloudpe_host: how the PHP side runs the host binary, and every way that can go wrong. */
class HostTest extends FakeHostTestCase
{
    public function testRunsWithAnArgumentArrayAndReturnsTheReport()
    {
        $host = $this->fakeHost('report', self::report('suspend', array('outcome' => array('message' => 'done'))), 1);
        $result = $host->run('suspend', array('app' => array('field2' => self::TOKEN)), array('--pretty'));
        $this->assertSame(1, $result['exit']);
        $this->assertSame('done', $result['report']['outcome']['message']);
        $this->assertSame(array('suspend', '--component', $this->dir . '/module.wasm', '--pretty'), $this->sentArgs());
        $this->assertSame(array('app' => array('field2' => self::TOKEN)), $this->sentRequest());
    }

    public function testShellCharactersInPathsAreNotInterpreted()
    {
        $odd = $this->dir . '/a b;touch pwned.wasm';
        copy($this->dir . '/module.wasm', $odd);
        $this->fakeHost('report', self::report('info', array()));
        $host = new cloudpe_host(__DIR__ . '/fixtures/fake-host', $odd);
        $host->run('info', array());
        $this->assertSame($odd, $this->sentArgs()[2]);
        $this->assertFileDoesNotExist(getcwd() . '/pwned.wasm');
        unlink($odd);
    }

    /** @dataProvider brokenHosts */
    public function testEachBrokenHostIsAClearError($setup, $needle)
    {
        $host = $setup($this);
        try {
            $host->run('suspend', array('app' => array()));
            $this->fail('no error');
        } catch (cloudpe_host_error $e) {
            $this->assertStringContainsString($needle, $e->getMessage());
            $this->assertStringNotContainsString(self::TOKEN, $e->getMessage());
        }
    }

    public function brokenHosts()
    {
        return array(
            'missing binary' => array(function ($t) {
                return new cloudpe_host('/nonexistent/hostbill-module-host', __FILE__);
            }, 'does not exist'),
            'not executable' => array(function ($t) {
                return new cloudpe_host(__FILE__, __FILE__);
            }, 'not executable'),
            'missing component' => array(function ($t) {
                return new cloudpe_host(__DIR__ . '/fixtures/fake-host', '/nonexistent/cloudpe.wasm');
            }, 'Component file'),
            'crash' => array(function ($t) {
                return $t->fakeHost('crash');
            }, 'crashed during suspend (signal 11)'),
            'garbage output, echoing the token' => array(function ($t) {
                putenv('FAKE_HOST_ECHO=' . FakeHostTestCase::TOKEN);
                return $t->fakeHost('garbage');
            }, 'printed something that is not its report'),
            'unknown exit code' => array(function ($t) {
                return $t->fakeHost('exit7');
            }, 'exit code 7'),
        );
    }

    public function testAHungHostIsKilledAtTheTimeout()
    {
        $host = $this->fakeHost('sleep', array(), 0, 1);
        $started = microtime(true);
        try {
            $host->run('sync', array('accounts' => array()));
            $this->fail('no timeout');
        } catch (cloudpe_host_error $e) {
            $this->assertStringContainsString('did not finish sync within 1 s', $e->getMessage());
        }
        $this->assertLessThan(5, microtime(true) - $started);
    }

    public function testLargeRequestsAndReportsDoNotDeadlock()
    {
        $decisions = array();
        for ($i = 0; $i < 20000; $i++) {
            $decisions[] = array('account_id' => $i, 'decision' => 'unchanged', 'facts' => array('cloudpe-uid' => (string) $i));
        }
        $host = $this->fakeHost('report', self::report('sync', array('decisions' => $decisions)));
        $accounts = array_fill(0, 20000, array('id' => 1, 'client_id' => 2, 'status' => 'Active', 'custom_fields' => array('cloudpeid' => '3')));
        $result = $host->run('sync', array('accounts' => $accounts));
        $this->assertCount(20000, $result['report']['decisions']);
        $this->assertCount(20000, $this->sentRequest()['accounts']);
    }
}
