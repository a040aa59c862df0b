<?php

use PHPUnit\Framework\TestCase;

/**
 * Issue 25 item 4 / issue 24 item 8: the host's report read as it arrives, one member or decision
 * at a time (cloudpe_report_reader), bounded, and hostile output refused with a clear error.
 */
class ReportReaderTest extends TestCase
{
    /** Reports as the host prints them: a streamed sync's (decisions first), an ordinary one, a failure. */
    public function reports()
    {
        $decisions = array(
            array('account_id' => 1, 'decision' => 'change', 'from' => 'Active', 'to' => 'Suspended', 'facts' => array('cloudpe-email' => "a\"}]\\[{b@x", 'cloudpe-login' => "ünï \u{1F600} /")),
            array('account_id' => 2, 'decision' => 'unchanged'),
            array('account_id' => 3, 'decision' => 'error', 'error' => array('kind' => 'not-found', 'message' => 'CloudPe has no user with uid 9', 'code' => null)),
        );
        return array(
            'streamed' => array(array('operation' => 'sync', 'module' => array('name' => 'cloudpe', 'version' => '2.2.0'), 'decisions' => $decisions, 'ok' => true, 'dry_run' => false, 'summary' => array('requests' => 3, 'elapsed_ms' => 12), 'logs' => array(), 'meter' => array('wall_ms' => 20, 'requests' => 3, 'peak_memory_bytes' => 1.5e9))),
            'ordinary' => array(array('ok' => true, 'operation' => 'suspend', 'outcome' => array('message' => 'done', 'facts' => array()), 'logs' => array(array('level' => 'info', 'message' => 'x')))),
            'failed, no decisions' => array(array('ok' => false, 'operation' => 'sync', 'error' => array('kind' => 'transport', 'message' => 'CloudPe at http://x is unreachable', 'code' => null, 'limit' => null))),
            'empty decisions' => array(array('operation' => 'sync', 'decisions' => array(), 'ok' => true)),
        );
    }

    /**
     * Whatever the chunks it arrives in, the reader gives what json_decode gives: the members, and
     * the decisions one by one to the callback, in order.
     *
     * @dataProvider reports
     */
    public function testAnyChunkingReadsWhatJsonDecodeReads(array $report)
    {
        mt_srand(25);
        foreach (array(0, JSON_PRETTY_PRINT, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES) as $flags) {
            $json = json_encode($report, $flags);
            $expected = json_decode($json, true);
            $streamed = isset($expected['decisions']) ? $expected['decisions'] : array();
            for ($trial = 0; $trial < 50; $trial++) {
                $got = array();
                $reader = new cloudpe_report_reader(1 << 20, function (array $decision, $index) use (&$got) {
                    $got[$index] = $decision;
                });
                for ($at = 0; $at < strlen($json); $at += $size) {
                    $size = $trial === 0 ? 1 : mt_rand(1, 40);
                    $reader->feed(substr($json, $at, $size));
                }
                $members = $reader->finish();
                $this->assertSame($streamed, $got, "decisions, flags {$flags}, trial {$trial}");
                $this->assertSame(count($streamed), $reader->decisions());
                $this->assertSame(array_merge($expected, isset($expected['decisions']) ? array('decisions' => array()) : array()), $members);

                $whole = new cloudpe_report_reader(1 << 20);
                $whole->feed($json);
                $this->assertSame($expected, $whole->finish(), 'without a callback, the decisions stay in the report');
            }
        }
    }

    /** Hostile or broken output: each a clear error naming the problem and where. */
    public function badOutputs()
    {
        return array(
            'nothing' => array('', 'it printed nothing'),
            'html' => array('<html>502</html>', 'the report is not a JSON object (at byte 0)'),
            'a list' => array('[{"ok":true}]', 'the report is not a JSON object (at byte 0)'),
            'cut short' => array('{"operation":"sync","decisions":[{"account_id":1}', 'the report ends early (after byte 49)'),
            'cut in a string' => array('{"operation":"sy', 'the report ends early'),
            'text after it' => array('{"ok":true} {"ok":false}', 'something follows the report (at byte 12)'),
            'a member twice' => array('{"ok":true,"ok":false}', 'the member "ok" appears twice'),
            'decisions twice' => array('{"decisions":[],"decisions":[{"account_id":1}]}', 'the member "decisions" appears twice'),
            'decisions not a list' => array('{"decisions":{"account_id":1}}', 'the member "decisions" is not a list (at byte 13)'),
            'a decision not an object' => array('{"decisions":[1]}', 'decision #1 is not a JSON object (at byte 14)'),
            'a trailing comma' => array('{"decisions":[{"a":1},]}', 'decision #2 is not valid JSON (at byte 22)'),
            'bad literal' => array('{"ok":tru}', 'the member "ok" is not valid JSON (at byte 6): Syntax error'),
            'no colon' => array('{"ok" true}', 'a colon was expected (at byte 6)'),
            'no name' => array('{,}', 'a member name was expected (at byte 1)'),
            'bad utf-8' => array("{\"a\":\"\xff\"}", 'the member "a" is not valid JSON'),
        );
    }

    /** @dataProvider badOutputs */
    public function testBadOutputIsAClearError($output, $message)
    {
        $decisions = 0;
        $reader = new cloudpe_report_reader(1 << 20, function () use (&$decisions) {
            $decisions++;
        });
        try {
            foreach ($output === '' ? array() : str_split($output, 3) as $chunk) {
                $reader->feed($chunk);
            }
            $reader->finish();
            $this->fail('no error');
        } catch (cloudpe_report_error $e) {
            $this->assertStringContainsString($message, $e->getMessage());
            $this->assertTrue($e->notReport);
        }
    }

    /** Nothing larger than the cap is ever held: one value, one decision, or the kept members together. */
    public function testWhatIsHeldIsBounded()
    {
        $big = str_repeat('y', 5000);
        $cases = array(
            array('{"decisions":[{"account_id":1,"facts":{"a":"' . $big . '"}}]}', 'decision #1 of the report is larger than 4 KiB, more than this PHP may hold (memory_limit)'),
            array('{"logs":"' . $big . '"}', 'the member "logs" of the report is larger than 4 KiB'),
            array('{"a":"' . substr($big, 0, 3000) . '","b":"' . substr($big, 0, 3000) . '"}', 'the report\'s members other than its decisions take more than 4 KiB (at the member "b")'),
        );
        foreach ($cases as $case) {
            list($output, $message) = $case;
            $reader = new cloudpe_report_reader(4096, function () {
            });
            try {
                foreach (str_split($output, 512) as $chunk) {
                    $reader->feed($chunk);
                }
                $this->fail('no error: ' . $message);
            } catch (cloudpe_report_error $e) {
                $this->assertStringContainsString($message, $e->getMessage());
                $this->assertFalse($e->notReport, 'a report too large, not garbage');
            }
        }
        // Streamed decisions do not add up: 10,000 of them under a 4 KiB cap.
        $reader = new cloudpe_report_reader(4096, function () {
        });
        $reader->feed('{"operation":"sync","decisions":[');
        for ($i = 0; $i < 10000; $i++) {
            $reader->feed(($i ? ',' : '') . '{"account_id":' . $i . ',"decision":"unchanged","facts":{"cloudpe-uid":"' . $i . '"}}');
        }
        $reader->feed('],"ok":true}');
        $this->assertSame(array('operation' => 'sync', 'decisions' => array(), 'ok' => true), $reader->finish());
        $this->assertSame(10000, $reader->decisions());
    }

    /** An id beyond PHP's integers stays exact (a string), never a rounded float. */
    public function testHugeIdsStayExact()
    {
        $got = array();
        $reader = new cloudpe_report_reader(4096, function (array $d) use (&$got) {
            $got[] = $d['account_id'];
        });
        $reader->feed('{"decisions":[{"account_id":18446744073709551615},{"account_id":7}]}');
        $reader->finish();
        $this->assertSame(array('18446744073709551615', 7), $got);
    }

    /**
     * Issue 22: a usage report's `usage` rows are streamed one by one, whatever the chunks; its
     * `decisions`, if it had any, would be kept as a member; a second `usage` is refused.
     */
    public function testAUsageReportStreamsItsUsageRows()
    {
        $rows = array(
            array('account_id' => 101, 'uid' => 12, 'from' => '2026-12-05T12:00:00Z', 'until' => '2026-12-06T12:00:00Z', 'hours' => array(array('start' => '2026-12-06T10:00:00Z', 'cost' => '0.1234', 'bonus' => '0.0234', 'facts' => array('rows' => '3')))),
            array('account_id' => 102, 'skipped' => 'status Pending is not billed'),
            array('account_id' => 103, 'error' => array('kind' => 'not-found', 'message' => ']}"{[')),
        );
        $json = json_encode(array('ok' => true, 'operation' => 'usage', 'module' => array('name' => 'CloudPe'), 'usage' => $rows, 'summary' => array('accounts' => 3)));
        foreach (array(1, 7, 4096) as $size) {
            $got = array();
            $reader = new cloudpe_report_reader(1 << 20, function (array $row, $index) use (&$got) {
                $got[$index] = $row;
            }, 'usage');
            foreach (str_split($json, $size) as $chunk) {
                $reader->feed($chunk);
            }
            $members = $reader->finish();
            $this->assertSame($rows, $got, "chunks of {$size}");
            $this->assertSame(array(), $members['usage']);
            $this->assertSame(array('accounts' => 3), $members['summary']);
        }
        $reader = new cloudpe_report_reader(1 << 20, function () {
        }, 'usage');
        $this->expectException(cloudpe_report_error::class);
        $this->expectExceptionMessage('the member "usage" appears twice');
        $reader->feed('{"usage":[{"account_id":1}],"usage":[]}');
    }

    public function testAUsageRowLargerThanPhpMayHoldIsRefusedByName()
    {
        $reader = new cloudpe_report_reader(1024, function () {
        }, 'usage');
        $this->expectException(cloudpe_report_error::class);
        $this->expectExceptionMessage('usage row #1 of the report is larger than 1 KiB');
        $reader->feed('{"operation":"usage","usage":[{"account_id":1,"hours":"' . str_repeat('x', 2000) . '"}]}');
    }
}
