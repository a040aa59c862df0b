<?php

require_once dirname(__DIR__) . '/class.cloudpe_sync.php';

/**
 * HostBill's cron entry point for the CloudPe module. The logic lives in cloudpe_sync, so no other
 * controller ever needs to declare it again.
 */
class cloudpe_controller extends HBController
{
    /** @var cloudpe set by HostBill */
    public $module;

    /** Pulls every account's CloudPe status once a day and records the ones that changed. */
    public function call_Daily()
    {
        $sync = new cloudpe_sync($this->module);
        return $sync->run();
    }
}
