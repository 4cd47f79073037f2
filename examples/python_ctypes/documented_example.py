# The Python ctypes example of the Runner Service specification, as written, except for
# the path to the library: the first argument, or the librunner.so of the installed package.
import sys

LIBRARY = sys.argv[1] if len(sys.argv) > 1 else __import__("runner.buildinfo").buildinfo.library_path()

import ctypes
import json
import tempfile

# Load the library
lib = ctypes.CDLL(str(LIBRARY))

# Define function prototypes
lib.runner_init.restype = ctypes.c_int
lib.runner_get_last_error.restype = ctypes.c_char_p
lib.runner_get_last_error_code.restype = ctypes.c_int  # a runner_error_code of runner_ffi.h (ABI 1.2)
RUNNER_ERROR_INVALID_ALT = 3
lib.runner_free_string.argtypes = [ctypes.c_char_p]
lib.runner_parse_alt_file.argtypes = [ctypes.c_char_p]
lib.runner_parse_alt_file.restype = ctypes.c_int
lib.runner_add_task_result.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
lib.runner_add_task_result.restype = ctypes.c_int
lib.runner_generate_last_file.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
lib.runner_generate_last_file.restype = ctypes.c_char_p
lib.runner_get_last_file_json.argtypes = [ctypes.c_char_p]
lib.runner_get_last_file_json.restype = ctypes.c_char_p
lib.runner_cleanup.restype = ctypes.c_int

# Initialize the FFI layer
lib.runner_init()

try:
    # Create an ALT file
    alt_file = {
        "id": "test_alt_file",
        "title": "Test ALT File",
        "mode": "normal",
        "tasks": [
            {
                "id": "task1",
                "description": "First task",
                "dependencies": None
            },
            {
                "id": "task2",
                "description": "Second task",
                "dependencies": ["task1"]
            }
        ]
    }
    
    # Parse ALT file
    alt_json = json.dumps(alt_file)
    result = lib.runner_parse_alt_file(alt_json.encode('utf-8'))
    
    if result == 0:
        error = lib.runner_get_last_error()
        code = lib.runner_get_last_error_code()     # reading the message left it as it was
        kind = " (invalid ALT file)" if code == RUNNER_ERROR_INVALID_ALT else ""
        print(f"Error {code}{kind}: {error.decode('utf-8')}")
        lib.runner_free_string(error)
        exit(1)
    
    # Add task results
    task1_result = {
        "task_id": "task1",
        "status": "completed",
        "output": {"text": "Task 1 output"}
    }
    
    task2_result = {
        "task_id": "task2",
        "status": "failed",
        "error": "Task 2 failed"
    }
    
    lib.runner_add_task_result(
        "test_alt_file".encode('utf-8'),
        json.dumps(task1_result).encode('utf-8')
    )
    
    lib.runner_add_task_result(
        "test_alt_file".encode('utf-8'),
        json.dumps(task2_result).encode('utf-8')
    )
    
    # Generate LAST file
    with tempfile.TemporaryDirectory() as temp_dir:
        last_id_ptr = lib.runner_generate_last_file(
            "test_alt_file".encode('utf-8'),
            temp_dir.encode('utf-8')
        )
        
        if last_id_ptr:
            last_id = ctypes.string_at(last_id_ptr).decode('utf-8')
            print(f"Generated LAST file: {last_id}")
            
            # Get LAST file as JSON
            last_json_ptr = lib.runner_get_last_file_json(last_id.encode('utf-8'))
            
            if last_json_ptr:
                last_json = ctypes.string_at(last_json_ptr).decode('utf-8')
                last_data = json.loads(last_json)
                print(f"LAST file success rate: {last_data['success_rate'] * 100:.2f}%")
                
                lib.runner_free_string(last_json_ptr)
            
            lib.runner_free_string(last_id_ptr)
        else:
            error = lib.runner_get_last_error()
            print(f"Error: {error.decode('utf-8')}")
            lib.runner_free_string(error)

finally:
    # Clean up
    lib.runner_cleanup()
