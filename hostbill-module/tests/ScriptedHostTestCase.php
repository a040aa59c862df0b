<?php

/**
 * Base of tests that run several actions: each host run answers the next scripted report
 * (`answer`), and the retry queue runs on a clock the test moves (`$now`).
 */
abstract class ScriptedHostTestCase extends FakeHostTestCase
{
    /** @var array[] reports the next hosts answer, in order: [report, exit] */
    protected $answers = array();
    /** @var int the retry queue's clock */
    protected $now = 1796000000;

    protected function setUp(): void
    {
        parent::setUp();
        $this->answers = array();
        $this->now = 1796000000;
    }

    /** A module whose every operation takes the next of $answers (tag "run{n}" keeps each one's files). */
    protected function scripted(array $fields = array(), $custom = array())
    {
        $module = $this->module($this->fakeHost(), $fields, $custom);
        $runs = 0;
        $module->useHostFactory(function ($connection, $timeout) use (&$runs) {
            $runs++;
            if (!$this->answers) {
                throw new LogicException('the test gave no answer for host run ' . $runs);
            }
            list($report, $exit) = array_shift($this->answers);
            return $this->fakeHost('report', $report, $exit, $timeout, "run{$runs}");
        });
        $reflection = new ReflectionProperty('cloudpe', 'host');
        $reflection->setAccessible(true);
        $reflection->setValue($module, null);
        $module->useRetries($this->queue());
        return $module;
    }

    protected function queue()
    {
        return new cloudpe_retries(null, function () {
            return $this->now;
        });
    }

    protected function answer($operation, array $fields, $exit = 0)
    {
        $this->answers[] = array(self::report($operation, $fields), $exit);
    }
}
