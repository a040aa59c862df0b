<?php

require_once dirname(__DIR__) . '/class.cloudpe_sync.php';

/*
 * HostBill's cron entry point for the CloudPe module. The logic lives in cloudpe_sync and
 * cloudpe_apps, so no other controller ever needs to declare it again.
 *
 * Version 1.0.x shipped admin/class.cloudpe_controller.php, which declares the same class. If that
 * leftover file was loaded first, declaring this class again would be a fatal "Cannot declare
 * class"; the declaration is therefore conditional, and the collision becomes a system-log line
 * telling the admin which files to delete (README, "Upgrading from 1.0.x").
 */
if (!class_exists('cloudpe_controller', false)) {
    class cloudpe_controller extends HBController
    {
        /** Marks this controller as the 2.x one (the 1.0.x admin controller has no such constant). */
        const GENERATION = 2;

        /** @var cloudpe set by HostBill; not connected to any App */
        public $module;

        /**
         * Once a day: syncs every CloudPe App's accounts. Returns one line per App; never throws.
         */
        public function call_Daily()
        {
            try {
                if (!$this->module instanceof cloudpe) {
                    $this->module = new cloudpe();
                }
                return cloudpe_sync::daily($this->module);
            } catch (\Throwable $e) {
                $message = 'CloudPe sync stopped by an unexpected error: ' . get_class($e) . ': ' . $e->getMessage();
                if ($this->module instanceof cloudpe) {
                    $message = $this->module->scrub($message);
                }
                hbm_log_error($message, cloudpe::LOG_TAG);
                return $message;
            }
        }

        /**
         * Every cron run: retries the failed actions of HostBill's automation that are due (see
         * cloudpe_retries). One SELECT when nothing is queued; never throws.
         */
        public function call_EveryRun()
        {
            return $this->guarded('retries', function (cloudpe $module) {
                return cloudpe_retries::everyRun($module);
            });
        }

        /**
         * Every hour: imports the closed hours of CloudPe usage of every App whose "Usage import"
         * is on (or test) into metered billing, exactly once per account and hour (see
         * cloudpe_usage). One line per App; never throws.
         */
        public function call_Hourly()
        {
            return $this->guarded('usage import', function (cloudpe $module) {
                return cloudpe_usage::hourly($module);
            });
        }

        /**
         * Once a month: reconciles every CloudPe App's accounts with CloudPe's users (read-only,
         * see cloudpe_reconcile). One line per App; never throws.
         */
        public function call_Monthly()
        {
            return $this->guarded('reconciliation', function (cloudpe $module) {
                return cloudpe_reconcile::monthly($module);
            });
        }

        /** Runs `$task` with the module, turning any Throwable into the task's output and a log line. */
        private function guarded($what, $task)
        {
            try {
                if (!$this->module instanceof cloudpe) {
                    $this->module = new cloudpe();
                }
                return call_user_func($task, $this->module);
            } catch (\Throwable $e) {
                $message = "CloudPe {$what} stopped by an unexpected error: " . get_class($e) . ': ' . $e->getMessage();
                if ($this->module instanceof cloudpe) {
                    $message = $this->module->scrub($message);
                }
                hbm_log_error($message, cloudpe::LOG_TAG);
                return $message;
            }
        }
    }
} elseif (!defined('cloudpe_controller::GENERATION')) {
    hbm_log_error(cloudpe::leftoverMessage(), cloudpe::LOG_TAG);
}
