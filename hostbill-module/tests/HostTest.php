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
        $this->assertSame(array('suspend', '--component', $this->dir . '/module.wasm', '--trusted-keys', $this->dir . '/keys', '--deadline-secs', '5', '--max-report-mib', '63', '--pretty'), $this->sentArgs());
        $this->assertSame(array('app' => array('field2' => self::TOKEN)), $this->sentRequest());
    }

    public function testTheCacheFolderIsPassedWithItsFlag()
    {
        $this->fakeHost('report', self::report('suspend', array()));
        $host = new cloudpe_host(__DIR__ . '/fixtures/fake-host', $this->dir . '/module.wasm', 120, array(), '/srv/hostbill/includes/modules/Hosting/cloudpe/cache', array(
            'FAKE_HOST_MODE' => 'report', 'FAKE_HOST_REPORT' => $this->dir . '/report-host.json', 'FAKE_HOST_ARGS' => $this->dir . '/args-host.txt',
        ));
        $host->run('suspend', array());
        $this->assertSame('/srv/hostbill/includes/modules/Hosting/cloudpe/cache', $this->flag('--cache-dir'));
        $this->assertSame('108', $this->flag('--deadline-secs'));
        $this->assertSame('63', $this->flag('--max-report-mib'), 'below the 64 MiB of the report PHP reads');
    }

    /** @dataProvider deadlines */
    public function testTheHostsDeadlineIsAlwaysShorterThanPhpsTimeout($timeout, $deadline)
    {
        $this->assertSame($deadline, cloudpe_host::deadlineFor($timeout));
        $this->assertLessThan($timeout, cloudpe_host::deadlineFor($timeout));
        $this->assertGreaterThan(0, cloudpe_host::deadlineFor($timeout));
    }

    public function deadlines()
    {
        return array('1 s' => array(1, 0.5), '10 s' => array(10, 5.0), '120 s' => array(120, 108.0), '900 s' => array(900, 810.0), '7200 s' => array(7200, 6480.0));
    }

    /** Issue 9, "also": the sync's 900 s reach the host as its deadline, below PHP's timeout. */
    public function testTheSyncsDeadlineReachesTheHost()
    {
        $timeouts = array();
        $module = $this->module($this->fakeHost());
        $module->useHostFactory(function ($connection, $timeout, $secrets) use (&$timeouts) {
            $timeouts[] = $timeout;
            return $this->fakeHost('report', self::report('sync', array('decisions' => array(), 'summary' => array())), 0, $timeout);
        });
        $reflection = new ReflectionProperty('cloudpe', 'host');
        $reflection->setAccessible(true);
        $reflection->setValue($module, null);
        $module->syncAccounts(array(array('id' => '1', 'client_id' => '2', 'status' => 'Active', 'custom_fields' => array())), array(), cloudpe_sync::SYNC_TIMEOUT);
        $this->assertSame(array(900), $timeouts);
        $deadline = (float) $this->flag('--deadline-secs');
        $this->assertSame(810.0, $deadline);
        $this->assertLessThan(900, $deadline);
        $this->assertGreaterThan(120, $deadline, 'not the host\'s 120 s default');
    }

    public function testTheChildGetsAMinimalEnvironment()
    {
        putenv('CLOUDPE_TEST_SENTINEL=inherited');
        try {
            $this->fakeHost('report', self::report('suspend', array()))->run('suspend', array());
        } finally {
            putenv('CLOUDPE_TEST_SENTINEL');
        }
        $env = $this->sentEnv();
        $this->assertSame('/usr/bin:/bin', $env['PATH']);
        $this->assertSame('C', $env['LANG']);
        $this->assertArrayNotHasKey('CLOUDPE_TEST_SENTINEL', $env);
        $this->assertArrayNotHasKey('HOME', $env);
        $this->assertSame('report', $env['FAKE_HOST_MODE'], 'what is passed on purpose arrives');
    }

    public function testShellCharactersInPathsAreNotInterpreted()
    {
        $odd = $this->dir . '/a b;touch pwned.wasm';
        copy($this->dir . '/module.wasm', $odd);
        $this->fakeHost('report', self::report('suspend', array()));
        $host = new cloudpe_host(__DIR__ . '/fixtures/fake-host', $odd, 10, array(), null, array(
            'FAKE_HOST_REPORT' => $this->dir . '/report-host.json', 'FAKE_HOST_ARGS' => $this->dir . '/args-host.txt',
        ));
        $host->run('suspend', array());
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
            $this->assertStringNotContainsString('61f0c2', $e->getMessage());
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
            }, 'cloudpe.wasm does not exist or is not readable'),
            'crash' => array(function ($t) {
                return $t->fakeHost('crash');
            }, 'crashed during suspend (signal 11)'),
            'garbage output, echoing the token' => array(function ($t) {
                $t->echo = FakeHostTestCase::TOKEN;
                return $t->fakeHost('garbage');
            }, 'printed something that is not its report'),
            'garbage output, echoing the JSON-escaped token' => array(function ($t) {
                $t->echo = substr(json_encode(FakeHostTestCase::TOKEN), 1, -1);
                return $t->fakeHost('garbage');
            }, '502 Bad Gateway [REDACTED]'),
            'unknown exit code' => array(function ($t) {
                return $t->fakeHost('exit7');
            }, 'exit code 7'),
        );
    }

    public function testAnOptionTheModuleSetsCannotBePassedAgain()
    {
        $this->expectException(cloudpe_host_error::class);
        $this->expectExceptionMessage('--deadline-secs is set by the module itself');
        $this->fakeHost()->run('sync', array(), array('--deadline-secs', '9999'));
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

    /** Issue 9, "also": output is capped; past the cap the host is killed with a clear message. */
    public function testAnEndlessStdoutIsCutAtTheCapAndTheHostKilled()
    {
        $host = $this->fakeHost('flood', array(), 0, 60);
        $started = microtime(true);
        try {
            $host->run('sync', array('accounts' => array()));
            $this->fail('no error');
        } catch (cloudpe_host_error $e) {
            $this->assertStringContainsString('wrote more than 64 MiB to its standard output during sync and was stopped', $e->getMessage());
        }
        $this->assertLessThan(30, microtime(true) - $started, 'stopped by the cap, not the timeout');
    }

    public function testAnEndlessStderrIsCutAtItsCap()
    {
        $host = $this->fakeHost('flood-stderr', array(), 0, 60);
        $host->limitOutput(cloudpe_host::MAX_STDOUT_BYTES, 4096);
        try {
            $host->run('suspend', array());
            $this->fail('no error');
        } catch (cloudpe_host_error $e) {
            $this->assertStringContainsString('wrote more than 4 KiB to its standard error during suspend and was stopped', $e->getMessage());
        }
        $this->assertSame(1048576, cloudpe_host::MAX_STDERR_BYTES);
    }

    /** Completion is the host's exit, even when a child it left holds the pipes open. */
    public function testTheExitEndsTheRunEvenIfThePipesStayOpen()
    {
        $host = $this->fakeHost('linger', self::report('suspend', array('outcome' => array('message' => 'done'))), 0, 20);
        $started = microtime(true);
        $result = $host->run('suspend', array());
        $this->assertSame(0, $result['exit']);
        $this->assertSame('done', $result['report']['outcome']['message']);
        $this->assertLessThan(3, microtime(true) - $started, 'not waiting for EOF');
    }

    /** Issue 10 §3: the scrubber removes the token's JSON-escaped and URL-encoded forms too. */
    public function testTheScrubberRemovesEveryEncodingOfTheToken()
    {
        $token = self::TOKEN;
        $text = implode(' | ', array(
            'plain ' . $token,
            'json ' . json_encode(array('s' => $token)),
            'json-unescaped-slashes ' . json_encode(array('s' => $token), JSON_UNESCAPED_SLASHES),
            'url ' . urlencode($token),
            'raw ' . rawurlencode($token),
        ));
        $scrubbed = cloudpe_host::scrubText($text, array($token));
        foreach (array($token, 'session"token', 'session\\"token', 'unit\\/session', 'unit/session', '61f0c2') as $form) {
            $this->assertStringNotContainsString($form, $scrubbed);
        }
        $this->assertSame(5, substr_count($scrubbed, '[REDACTED]'));
        $this->assertStringContainsString('json {"s":"[REDACTED]"}', $scrubbed);
        $this->assertSame('nothing secret', cloudpe_host::scrubText('nothing secret', array('', $token)));
    }

    public function testStderrIsScrubbedBeforeItIsReturned()
    {
        $module = $this->module($this->fakeHost());
        $host = $this->fakeHost('report', self::report('suspend', array('outcome' => array('message' => 'ok'))));
        $result = $host->run('suspend', array());
        $this->assertSame('', $result['stderr']);
        $leaky = new cloudpe_host(__DIR__ . '/fixtures/fake-host', $this->dir . '/module.wasm', 10, array(self::TOKEN), null, array(
            'FAKE_HOST_MODE' => 'leak',
            'FAKE_HOST_ECHO_JSON' => substr(json_encode(self::TOKEN), 1, -1),
            'FAKE_HOST_ECHO_URL' => rawurlencode(self::TOKEN),
        ));
        try {
            $leaky->run('suspend', array());
            $this->fail('no error');
        } catch (cloudpe_host_error $e) {
            $this->assertStringContainsString('not its report', $e->getMessage());
            $this->assertStringContainsString('{"progress": "[REDACTED]"} session=[REDACTED]', $e->getMessage());
            $this->assertNoToken($module, $e->getMessage());
        }
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

    /**
     * Issue 25 item 4 / issue 24 item 8: what PHP holds of a report is derived from memory_limit:
     * a tenth of what is left (a decoded report takes up to 8.2 times its text), 1 MiB at least,
     * 64 MiB at most; no limit, 64 MiB.
     */
    public function testTheHeldReportIsDerivedFromMemoryLimit()
    {
        $this->assertSame(134217728, cloudpe_host::memoryLimitBytes('128M'));
        $this->assertSame(1073741824, cloudpe_host::memoryLimitBytes(' 1g '));
        $this->assertSame(524288, cloudpe_host::memoryLimitBytes('512K'));
        $this->assertSame(134217728, cloudpe_host::memoryLimitBytes('134217728'));
        $this->assertNull(cloudpe_host::memoryLimitBytes('-1'));
        $this->assertNull(cloudpe_host::memoryLimitBytes(''));
        $this->assertSame(intdiv(118 * 1048576, 10), cloudpe_host::heldBudget('128M', 10 * 1048576));
        $this->assertSame(cloudpe_host::MIN_HELD_BYTES, cloudpe_host::heldBudget('16M', 15 * 1048576));
        $this->assertSame(cloudpe_host::MAX_STDOUT_BYTES, cloudpe_host::heldBudget('4G', 0));
        $this->assertSame(cloudpe_host::MAX_STDOUT_BYTES, cloudpe_host::heldBudget('-1', 1 << 30));
    }

    /**
     * A report PHP holds whole (any operation but a streamed sync) is bounded by that budget, and
     * the host is told to stop below it; a streamed sync's report only by the 64 MiB read.
     */
    public function testTheHostsReportLimitFollowsWhatPhpHolds()
    {
        $host = $this->fakeHost('report', self::report('suspend', array('outcome' => array('message' => 'ok'))));
        $host->limitHeld(12 * 1048576);
        $host->run('suspend', array());
        $this->assertSame('11', $this->flag('--max-report-mib'));
        $host->stream('sync', '{"accounts":[]}', array(), function () {
        });
        $this->assertSame('63', $this->flag('--max-report-mib'), 'a streamed report is never held whole');
    }

    /** A streamed sync hands each decision over as it is read, and its report keeps none. */
    public function testAStreamedSyncHandsOverEachDecision()
    {
        $decisions = array();
        for ($i = 0; $i < 3000; $i++) {
            $decisions[] = array('account_id' => $i, 'decision' => 'unchanged', 'facts' => array('cloudpe-uid' => (string) $i));
        }
        $host = $this->fakeHost('report', self::report('sync', array('decisions' => $decisions, 'summary' => array('requests' => 2))));
        $host->limitHeld(4096); // far less than the 3,000 decisions: they are never all held
        $got = array();
        $result = $host->stream('sync', '{"app":{},"accounts":[]}', array('--dry-run'), function (array $decision, $index) use (&$got) {
            $got[] = array($index, $decision['account_id']);
        });
        $this->assertCount(3000, $got);
        $this->assertSame(array(2999, 2999), $got[2999]);
        $this->assertSame(array(), $result['report']['decisions']);
        $this->assertSame(array('requests' => 2), $result['report']['summary']);
        $this->assertSame('{"app":{},"accounts":[]}', file_get_contents("{$this->dir}/stdin-host.json"), 'the request as given');
        $this->assertContains('--dry-run', $this->sentArgs());
    }

    /** A decision the caller refuses (its callback throws) stops the host: a clear error. */
    public function testARefusingCallbackStopsTheHost()
    {
        $host = $this->fakeHost('report', self::report('sync', array('decisions' => array(array('account_id' => 1, 'decision' => 'unchanged')))));
        try {
            $host->stream('sync', '{}', array(), function () {
                throw new cloudpe_report_error('the temporary folder is full ' . FakeHostTestCase::TOKEN, false);
            });
            $this->fail('no error');
        } catch (cloudpe_host_error $e) {
            $this->assertSame("the module host's report was refused during sync and the host stopped: the temporary folder is full [REDACTED]", $e->getMessage());
        }
    }

    /** Issue 12: --trusted-keys always names the keys: the folder beside the component, or the one given. */
    public function testTheTrustedKeysAreAlwaysPassed()
    {
        $this->fakeHost('report', self::report('suspend', array()))->run('suspend', array());
        $this->assertSame($this->dir . '/keys', $this->flag('--trusted-keys'), 'default: the keys folder beside the component');
        $this->assertNotContains('--allow-unsigned', $this->sentArgs());

        file_put_contents($this->dir . '/other.pem', "-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n");
        $host = new cloudpe_host(__DIR__ . '/fixtures/fake-host', $this->dir . '/module.wasm', 10, array(), null, array(
            'FAKE_HOST_REPORT' => $this->dir . '/report-host.json', 'FAKE_HOST_ARGS' => $this->dir . '/args-host.txt',
        ), $this->dir . '/other.pem');
        $host->run('suspend', array());
        $this->assertSame($this->dir . '/other.pem', $this->flag('--trusted-keys'));
        $this->assertSame($this->dir . '/other.pem', $host->trustedKeys());
    }

    /** @dataProvider missingKeys */
    public function testMissingTrustedKeysAreAClearErrorAndNothingRuns($setup, $needle)
    {
        $setup($this->dir);
        try {
            $this->fakeHost('report', self::report('suspend', array()))->run('suspend', array());
            $this->fail('no error');
        } catch (cloudpe_host_error $e) {
            $this->assertStringContainsString($needle, $e->getMessage());
            $this->assertStringContainsString('reinstall the module bundle (includes/modules/Hosting/cloudpe/keys/vendor.pub', $e->getMessage());
        }
        $this->assertFileDoesNotExist($this->dir . '/args-host.txt', 'the host was never started');
    }

    public function missingKeys()
    {
        return array(
            'no keys folder' => array(function ($dir) {
                unlink($dir . '/keys/vendor.pub');
                rmdir($dir . '/keys');
            }, 'keys do not exist'),
            'an empty keys folder' => array(function ($dir) {
                rename($dir . '/keys/vendor.pub', $dir . '/keys/vendor.txt');
            }, 'holds no public key (*.pem, *.pub)'),
        );
    }

    /** @dataProvider optOuts */
    public function testUnsignedComponentsCanNeverBeAllowedFromPhp($options, $env, $needle)
    {
        $host = new cloudpe_host(__DIR__ . '/fixtures/fake-host', $this->dir . '/module.wasm', 10, array(), null, $env + array(
            'FAKE_HOST_REPORT' => $this->dir . '/report-host.json', 'FAKE_HOST_ARGS' => $this->dir . '/args-host.txt',
        ));
        file_put_contents($this->dir . '/report-host.json', json_encode(self::report('suspend', array())));
        try {
            $host->run('suspend', array(), $options);
            $this->fail('no error');
        } catch (cloudpe_host_error $e) {
            $this->assertStringContainsString($needle, $e->getMessage());
        }
        $this->assertFileDoesNotExist($this->dir . '/args-host.txt');
    }

    public function optOuts()
    {
        return array(
            '--allow-unsigned' => array(array('--allow-unsigned'), array(), 'never used by the module: it runs only components signed by a trusted key'),
            '--trusted-keys again' => array(array('--trusted-keys', '/tmp/mine.pem'), array(), '--trusted-keys is set by the module itself'),
            'HOSTBILL_MODULE_ALLOW_UNSIGNED' => array(array(), array('HOSTBILL_MODULE_ALLOW_UNSIGNED' => 'true'), 'HOSTBILL_MODULE_ALLOW_UNSIGNED is set by the module itself or never'),
            'HOSTBILL_MODULE_TRUSTED_KEYS' => array(array(), array('HOSTBILL_MODULE_TRUSTED_KEYS' => '/tmp'), 'HOSTBILL_MODULE_TRUSTED_KEYS is set by the module itself or never'),
        );
    }

    public function testInfoIsSentNoRequest()
    {
        $this->fakeHost('report', self::report('suspend', array()), 0, 10, 'host', self::report('info', array('info' => array())))->run('info', array('ignored' => true));
        $this->assertSame('', file_get_contents($this->dir . '/stdin-host.json.info'), 'the host reads nothing for info: stdin is closed at once');
    }

    /** Issue 12: what the admin is told when the host refused the component's signature. */
    public function testASignatureRefusalComesWithAdvice()
    {
        $host = $this->fakeHost();
        $refused = function ($message) {
            return self::report('suspend', array('error' => array('kind' => 'module-refused', 'message' => $message)));
        };
        $component = $this->dir . '/module.wasm';
        $advice = $host->advice($refused("{$component} is refused: it was modified after it was signed by key 0123456789abcdef (the signature does not match its bytes)"));
        $this->assertSame("Install the vendor's signed cloudpe.wasm together with its cloudpe.wasm.sig (both from the same release bundle) in {$this->dir}/ (README: Upgrading the module).", $advice, 'no previous component: no rollback offered');

        file_put_contents($component . '.previous', 'the previous component');
        $advice = $host->advice($refused("{$component} is refused: it is not signed (no signature file) (expected {$component}.sig)"));
        $command = __DIR__ . "/fixtures/fake-host --component {$component} --trusted-keys {$this->dir}/keys rollback";
        $this->assertStringContainsString("or switch back to the previous component, as the web server's user: {$command}", $advice);
        foreach (array('it is signed by key 1111222233334444, which this host does not trust (trusted: 0123456789abcdef)', 'no trusted keys are configured (pass --trusted-keys ...)', 'its signature file is not valid: expected value') as $why) {
            $this->assertNotNull($host->advice($refused("{$component} is refused: {$why}")), $why);
        }
        $this->assertNotNull($host->advice(self::report('suspend', array('error' => array('kind' => 'bad-input', 'message' => '--trusted-keys: /x/keys holds no public key')))));
        $this->assertNull($host->advice($refused('the component targets hostbill:provisioning@3.0.0')), 'other refusals: no signature advice');
        $this->assertNull($host->advice(self::report('suspend', array('error' => array('kind' => 'transport', 'message' => 'it is not signed')))));
        $this->assertNull($host->advice(self::report('suspend', array())));
    }

    /** Issue 24: a run that read the component while an install replaced it is run once more. */
    public function testARunThatReadAComponentBeingReplacedIsRetriedOnce()
    {
        $runs = function () {
            return count(file($this->dir . '/report-host.json.runs'));
        };
        $result = $this->fakeHost('refuse-once', self::report('suspend', array('outcome' => array('message' => 'done'))))->run('suspend', array());
        $this->assertSame(0, $result['exit']);
        $this->assertSame('done', $result['report']['outcome']['message']);
        $this->assertSame(2, $runs());

        unlink($this->dir . '/report-host.json.runs');
        $modified = self::report('suspend', array('error' => array('kind' => 'module-refused', 'message' => "{$this->dir}/module.wasm is refused: it was modified after it was signed by key 0123456789abcdef (the signature does not match its bytes)")));
        $result = $this->fakeHost('report', $modified, 3)->run('suspend', array());
        $this->assertSame(3, $result['exit'], 'a second refusal is reported');
        $this->assertSame(2, $runs(), 'once more only');

        unlink($this->dir . '/report-host.json.runs');
        $unsigned = self::report('suspend', array('error' => array('kind' => 'module-refused', 'message' => "{$this->dir}/module.wasm is refused: it is not signed (no signature file)")));
        $this->assertSame(3, $this->fakeHost('report', $unsigned, 3)->run('suspend', array())['exit']);
        $this->assertSame(1, $runs(), 'another refusal is not retried');
    }

    public function testTheAdminsCommandQuotesOnlyWhatAShellWouldSplit()
    {
        $host = new cloudpe_host('/srv/hb/includes/modules/Hosting/cloudpe/bin/hostbill-module-host', '/srv/my hb/cloudpe.wasm', 10, array(), null, array(), '/srv/hb/keys');
        $this->assertSame("/srv/hb/includes/modules/Hosting/cloudpe/bin/hostbill-module-host --component '/srv/my hb/cloudpe.wasm' --trusted-keys /srv/hb/keys install /tmp/new.wasm", $host->command('install', array('/tmp/new.wasm')));
    }

    /** Issue 12: the report's named limit and meter, as the short phrases of log and cron lines. */
    public function testTheLimitAndTheMeterArePhrases()
    {
        $report = self::report('sync', array(
            'error' => array('kind' => 'module-trapped', 'message' => 'the module did not finish within 108 s', 'limit' => array('name' => 'deadline', 'value' => '108 s')),
            'meter' => array('wall_ms' => 108042, 'requests' => 7, 'bytes_received' => 1024, 'peak_memory_bytes' => 1114112),
        ));
        $this->assertSame('stopped by the deadline limit (108 s)', cloudpe_host::limitNote($report));
        $this->assertSame('7 requests in 108.0 s', cloudpe_host::meterNote($report));
        $this->assertSame('1 request in 0.3 s', cloudpe_host::meterNote(array('meter' => array('wall_ms' => 260, 'requests' => 1))));
        $this->assertNull(cloudpe_host::limitNote(self::report('sync', array('error' => array('kind' => 'transport', 'message' => 'x')))));
        $this->assertNull(cloudpe_host::meterNote(self::report('sync', array())));
    }
}
